"""GRU4Rec (Hidasi et al. 2016; the full-softmax variant of Hidasi & Karatzoglou 2018).

A GRU reads each user's time-ordered history; the hidden state after the last item, projected
to the embedding width, is scored against the item embeddings (tied input/output). Training,
windows, losses (full softmax cross-entropy by default), augmentation, the contrastive
pretraining objective, scoring and persistence are SASRec's (:class:`NextItemModel`), so the
three families are compared on the same Trainer, windows and leave-one-out protocol.

Histories are left-padded for batching; the GRU runs over each history's real items only
(packed sequences), so padding never enters the hidden state.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fusionrec.models.base import Capabilities
from fusionrec.models.registry import register
from fusionrec.models.sequential._next_item import NextItemConfig, NextItemModel, NextItemModule

__all__ = ["GRU4Rec", "GRU4RecConfig", "GRU4RecModule", "left_to_right", "right_to_left"]


class GRU4RecConfig(NextItemConfig):
    """GRU4Rec hyper-parameters (plus the shared next-item and training settings)."""

    state_dim: int = Field(128, ge=1)
    """GRU state width (projected to ``embedding_dim`` for scoring)."""
    n_layers: int = Field(1, ge=1)
    """Stacked GRU layers."""


def left_to_right(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, L, ...) left-padded rows -> right-padded (each row's real items moved to the front)."""
    big_l = x.shape[1]
    pos = torch.arange(big_l, device=x.device)[None, :]
    src = (pos + (big_l - lengths)[:, None]) % big_l
    return torch.gather(x, 1, src.view(*src.shape, *([1] * (x.dim() - 2))).expand_as(x))


def right_to_left(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`left_to_right`; padding positions come back as zeros."""
    big_l = x.shape[1]
    pos = torch.arange(big_l, device=x.device)[None, :]
    src = (pos - (big_l - lengths)[:, None]) % big_l
    out = torch.gather(x, 1, src.view(*src.shape, *([1] * (x.dim() - 2))).expand_as(x))
    keep = pos >= (big_l - lengths)[:, None]
    return out * keep.view(*keep.shape, *([1] * (x.dim() - 2))).to(out.dtype)


class GRU4RecModule(NextItemModule):
    """Item embeddings -> GRU over the real items -> linear projection."""

    def __init__(self, n_items: int, c: GRU4RecConfig) -> None:
        super().__init__(n_items, c)
        self.gru = nn.GRU(
            c.embedding_dim,
            c.state_dim,
            c.n_layers,
            batch_first=True,
            dropout=c.dropout if c.n_layers > 1 else 0.0,
        )
        self.proj = nn.Linear(c.state_dim, c.embedding_dim)

    def encode_embedded(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        lengths = valid.sum(1)
        # an empty history runs one padding step (its representation is the GRU's bias state)
        run = lengths.clamp_min(1)
        packed = pack_padded_sequence(
            left_to_right(x, run), run.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.proj(self.drop(right_to_left(out, run)))


@register("gru4rec")
class GRU4Rec(NextItemModel):
    """GRU4Rec: next-item prediction by a recurrent network over the user's history."""

    Config: ClassVar[type[GRU4RecConfig]] = GRU4RecConfig
    capabilities = Capabilities(sequential=True, needs_timestamps=True, cold_start_users=True)
    config: GRU4RecConfig

    def build_module(self) -> nn.Module:
        return GRU4RecModule(self.n_items, self.config)

    def _init_std(self) -> float:
        return 0.0  # xavier-normal matrices (GRU4Rec's RecBole init), zero biases
