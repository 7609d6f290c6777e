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
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.models.sequential.sasrec import SASRec, SASRecModule, SequenceConfig

__all__ = ["NextItemConfig", "NextItemModule", "NextItemModel"]


class NextItemConfig(SequenceConfig):
    """Settings shared by the next-item models trained like SASRec (GRU4Rec, Caser), plus a
    self-supervised pretraining objective."""

    _AUGMENT_USERS: ClassVar[str] = "objective='contrastive', cl_weight and augment_copies"
    _AUGMENT_HINT: ClassVar[str] = "objective='contrastive', cl_weight > 0 and/or augment_copies > 0"

    objective: Literal["next_item", "contrastive"] = "next_item"
    """'next_item': predict each next item. 'contrastive': self-supervised pretraining, the
    InfoNCE term between two augmented views of each window only (needs ``augment``); fine-tune
    afterwards with ``fit(..., init_from=folder)``."""

    def _uses_augment(self) -> bool:
        return super()._uses_augment() or self.objective == "contrastive"


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
