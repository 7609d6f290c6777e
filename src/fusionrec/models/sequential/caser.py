"""Caser (Tang & Wang 2018): convolutional sequence embedding.

The last ``window`` (L) items before each position form an L x d "image": ``n_v`` vertical
filters (L x 1: learned weighted sums of the L item vectors) and ``n_h`` horizontal filters for
every height h = 1..L (h x d, ReLU, max-pooled over the L - h + 1 placements, so a filter fires
on a union-level pattern anywhere in the window) are concatenated and mapped by a ReLU fully
connected layer to the representation, scored against the tied item embeddings.

Every position of a training window is encoded at once (each position's window is cut from
the left-padded sequence with ``unfold``), so Caser trains on SASRec's windows, losses and
Trainer (:class:`NextItemModel`): a window of max_len targets is max_len of Caser's (L, 1)
training samples. Differences from the paper: one next item per sample rather than T, and no
user embedding in the output layer (so an ad-hoc history is scored exactly as a known user's).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from fusionrec.models.base import Capabilities
from fusionrec.models.registry import register
from fusionrec.models.sequential._next_item import NextItemConfig, NextItemModel, NextItemModule

__all__ = ["Caser", "CaserConfig", "CaserModule", "position_windows"]


class CaserConfig(NextItemConfig):
    """Caser hyper-parameters (plus the shared next-item and training settings)."""

    window: int = Field(5, ge=1)
    """L: how many recent items each representation reads."""
    n_v: int = Field(4, ge=0)
    """Vertical filters."""
    n_h: int = Field(16, ge=0)
    """Horizontal filters per height (heights 1..window)."""
    dropout: float = Field(0.4, ge=0, lt=1)
    """Dropout on the input embeddings and the convolution features."""

    @model_validator(mode="after")
    def _has_filters(self) -> CaserConfig:
        if self.n_v == 0 and self.n_h == 0:
            raise ValueError("Caser needs n_v > 0 or n_h > 0 filters")
        return self


def position_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, T, d) -> (B, T, window, d): at position t the items t-window+1..t (zeros before 0)."""
    xp = F.pad(x, (0, 0, window - 1, 0))
    return xp.unfold(1, window, 1).transpose(2, 3)


class CaserModule(NextItemModule):
    """Vertical and horizontal convolutions over each position's window, then a ReLU layer."""

    def __init__(self, n_items: int, c: CaserConfig) -> None:
        super().__init__(n_items, c)
        d, big_l = c.embedding_dim, c.window
        self.window = big_l
        self.vertical = nn.Parameter(torch.empty(c.n_v, big_l)) if c.n_v else None
        self.horizontal = nn.ModuleList(
            nn.Linear(h * d, c.n_h) for h in range(1, big_l + 1) if c.n_h
        )
        self.fc = nn.Linear(c.n_v * d + c.n_h * big_l, d)

    def encode_embedded(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        win = position_windows(x, self.window)  # (B, T, L, d)
        b, t, big_l, d = win.shape
        feats = []
        if self.vertical is not None:
            feats.append(torch.einsum("btld,vl->btvd", win, self.vertical).reshape(b, t, -1))
        for h, conv in enumerate(self.horizontal, start=1):
            sub = win.unfold(2, h, 1).transpose(-1, -2).reshape(b, t, big_l - h + 1, h * d)
            feats.append(F.relu(conv(sub)).amax(2))
        return F.relu(self.fc(self.drop(torch.cat(feats, dim=-1))))


@register("caser")
class Caser(NextItemModel):
    """Caser: next-item prediction by convolutions over the user's most recent items."""

    Config: ClassVar[type[CaserConfig]] = CaserConfig
    capabilities = Capabilities(sequential=True, needs_timestamps=True, cold_start_users=True)
    config: CaserConfig

    def build_module(self) -> nn.Module:
        return CaserModule(self.n_items, self.config)

    def _init_std(self) -> float:
        return 0.0
