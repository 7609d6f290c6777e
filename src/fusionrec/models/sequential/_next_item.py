"""Shared parts of the next-item sequence models that reuse SASRec's training (GRU4Rec, Caser).

:class:`NextItemConfig` holds the settings every next-item model shares with SASRec (windows,
loss, sampled softmax, augmentation) plus ``objective``: ``"next_item"`` (default) or
``"contrastive"``, a self-supervised pretraining stage that trains the encoder on the
InfoNCE term between two augmented views alone (no next-item loss; see
:mod:`fusionrec.models.sequential.pretrain`). :class:`NextItemModule` is SASRec's output
head (tied item embeddings, losses) with the encoder left to subclasses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from fusionrec.data.augmentation import AugmentConfig, AugmentOp
from fusionrec.data.dataset import Dataset
from fusionrec.models.sequential.sasrec import SASRec, SASRecModule
from fusionrec.training.config import TrainConfig

__all__ = ["NextItemConfig", "NextItemModule", "NextItemModel"]


class NextItemConfig(TrainConfig):
    """Settings shared by the next-item models trained like SASRec."""

    max_len: int = Field(50, ge=1)
    """Longest history the model reads (older items are dropped)."""
    embedding_dim: int = Field(64, ge=1)
    """Item embedding width (also the width of the sequence representation)."""
    dropout: float = Field(0.3, ge=0, lt=1)
    """Dropout on embeddings and the encoder output."""
    loss: Literal["ce", "bpr", "bce"] = "ce"
    """'ce': full softmax cross-entropy over all items; 'bpr'/'bce': one uniform negative per position."""
    history_includes_valid: bool = True
    """After fitting, append the validation interactions to each user's stored history."""
    batch_size: int = Field(128, ge=1)
    """Training windows (sequences of up to max_len positions) per optimisation step."""
    epochs: int = Field(200, ge=1)
    """Maximum number of passes over the training windows."""
    objective: Literal["next_item", "contrastive"] = "next_item"
    """'next_item': predict each next item. 'contrastive': self-supervised pretraining, the
    InfoNCE term between two augmented views of each window only (needs ``augment``); fine-tune
    afterwards with ``fit(..., init_from=folder)``."""
    augment: tuple[AugmentOp, ...] = ()
    """Sequence augmentation ops with rates (as in SASRec), used by ``cl_weight``,
    ``augment_copies`` and the contrastive objective."""
    augment_compose: Literal["one", "all"] = "one"
    """'one': each view gets one op drawn uniformly from ``augment`` (CL4SRec); 'all': every op."""
    cl_weight: float = Field(0.0, ge=0)
    """Weight of a contrastive term added to the next-item loss; 0 = off."""
    cl_temperature: float = Field(1.0, gt=0)
    """InfoNCE temperature."""
    cl_similarity: Literal["dot", "cos"] = "dot"
    """Similarity of two views' representations in InfoNCE: dot product or cosine."""
    augment_copies: int = Field(0, ge=0)
    """Augmented copies of each training sequence added to the next-item training data."""
    sampled_negatives: int = Field(0, ge=0)
    """0: the loss as described by ``loss``; N > 0: a pool of N negatives per training window."""
    negative_sampling: Literal["uniform", "popularity"] = "uniform"
    """How the pool is drawn: uniformly over the catalogue or proportionally to training counts."""
    logq_correction: bool = True
    """Sampled 'ce': subtract log(N·q_j) from each pool item's logit."""
    gbce_t: float = Field(0.0, ge=0, le=1)
    """Sampled 'bce': gSASRec's calibration t (0 = plain BCE)."""

    @model_validator(mode="after")
    def _settings_used(self) -> NextItemConfig:
        if self.gbce_t > 0 and (self.loss != "bce" or self.sampled_negatives == 0):
            raise ValueError("gbce_t needs loss='bce' and sampled_negatives > 0")
        uses = self.cl_weight > 0 or self.augment_copies > 0 or self.objective == "contrastive"
        if uses and not self.augment:
            raise ValueError(
                "objective='contrastive', cl_weight and augment_copies need augmentation ops in 'augment'"
            )
        if self.augment and not uses:
            raise ValueError(
                "'augment' is set but unused: set objective='contrastive', cl_weight > 0 "
                "and/or augment_copies > 0"
            )
        return self

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(ops=self.augment, compose=self.augment_compose)


class NextItemModule(SASRecModule):
    """SASRec's head (tied item embeddings, next-item and contrastive losses) over an encoder
    written by the subclass in ``encode_embedded(x, valid)``."""

    def __init__(self, n_items: int, c: NextItemConfig) -> None:
        nn.Module.__init__(self)
        self.n_items = n_items
        self.loss_kind = c.loss
        self.sampled = c.sampled_negatives
        self.logq = c.logq_correction
        if self.sampled:
            a = min(self.sampled / max(n_items - 1, 1), 1.0)
            self.gbce_beta = a * (c.gbce_t * (1 - 1 / a) + 1 / a)
        self.item_emb = nn.Embedding(n_items + 1, c.embedding_dim)  # row 0 = padding
        self.drop = nn.Dropout(c.dropout)
        self.objective = c.objective
        self.cl_weight = c.cl_weight
        self.cl_temperature = c.cl_temperature
        self.cl_similarity = c.cl_similarity
        self.mask_code = n_items + 1
        uses_cl = c.cl_weight > 0 or c.objective == "contrastive"
        uses_mask = uses_cl and any(op.kind == "mask" for op in c.augment)
        self.mask_emb = nn.Parameter(torch.zeros(1, c.embedding_dim)) if uses_mask else None

    def encode_embedded(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, L, d) embedded inputs (zero at padding), (B, L) validity -> (B, L, d)."""
        raise NotImplementedError

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        valid = seq > 0
        if self.mask_emb is not None:
            masked = seq == self.mask_code
            x = self.item_embeddings(seq.masked_fill(masked, 0))
            x = torch.where(masked.unsqueeze(-1), self.mask_emb.to(x.dtype), x)
        else:
            x = self.item_embeddings(seq)
        x = x * valid.unsqueeze(-1).to(x.dtype)
        return self.encode_embedded(self.drop(x), valid)

    def item_weights(self) -> torch.Tensor:
        codes = torch.arange(1, self.n_items + 1, device=self.item_emb.weight.device)
        return self.item_embeddings(codes)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.objective == "contrastive":
            return {"cl": self.cl_loss(batch["view1"], batch["view2"])}
        return super().loss(batch)


class NextItemModel(SASRec):
    """SASRec's data pipeline, scoring and persistence for another encoder (``build_module``)."""

    Config = NextItemConfig
    config: NextItemConfig

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        super()._prepare(dataset, rng)
        if self.config.objective == "contrastive":
            # windows of one item have no context to augment; views need >= 1 real item
            keep = (self.inputs_ > 0).any(1)
            self.inputs_, self.targets_ = self.inputs_[keep], self.targets_[keep]

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]:
        contrastive = self.config.objective == "contrastive"
        for batch in super().batches(dataset, rng):
            if contrastive and "view1" not in batch:
                inputs = batch["inputs"].cpu().numpy()
                for v in ("view1", "view2"):
                    batch[v] = torch.as_tensor(self.augmenter_(inputs, rng), device=self.device_)
            yield batch
