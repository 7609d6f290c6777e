"""Two-tower retrieval model: a user tower and an item tower meeting in a cosine dot product.

Each tower is an id embedding plus the side's encoded features (``fusionrec.nn.features``:
categorical, multi-valued genres mean-pooled, numeric standardised, dense item matrices such
as ``Dataset.item_embeddings`` projected linearly) fed through an MLP to ``out_dim`` and
L2-normalised. Scores are cosines divided by a temperature.

Losses: ``in_batch`` softmax (the other positives of the batch are the negatives; optional
logQ correction subtracts log(popularity share) from each candidate's logit, since in-batch
negatives are drawn by popularity) or ``sampled`` softmax against ``num_negatives`` uniform
items shared across the batch.

The in-batch softmax is computed over the batch's *distinct* items (:func:`in_batch_softmax`):
a candidate that occurs c times gets log(c) added to its logit, and a row's own positive counts
once, which is exactly the B x B softmax whose duplicate copies of the row's positive are masked,
at (B x distinct) cost and with the item tower run once per distinct item (on popularity-skewed
data about 0.6-0.8 of B). With the shared fused optimiser step this made an epoch on 1M
power-law interactions about 2x faster (docs/scale.md).

Cold start: an id that had no training interactions gets a zero id embedding, so a new item
(or user) is represented by its features alone; ``id_dropout`` zeroes the id embedding of a
random share of training examples so the towers learn to work without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities
from fusionrec.models.registry import register
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.nn.features import FeatureEncoder, FeatureTables, mlp
from fusionrec.training.config import TrainConfig

__all__ = ["TwoTower", "TwoTowerConfig", "in_batch_softmax"]


class TwoTowerConfig(TrainConfig):
    """Two-tower hyper-parameters (plus the shared training settings)."""

    _aliases: ClassVar[dict[str, str]] = {"id_dim": "embedding_dim", "hidden": "hidden_dims"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    embedding_dim: int = Field(64, ge=1)
    """Width of the user and item id embeddings (the tower input; the retrieval vector is
    ``out_dim`` wide; was ``id_dim``)."""
    feature_dim: int = Field(16, ge=1)
    """Width of each feature field's embedding."""
    hidden_dims: tuple[int, ...] = (128,)
    """Hidden layer widths of each tower's MLP (was ``hidden``)."""
    out_dim: int = Field(64, ge=1)
    """Output width of both towers (the retrieval vector)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout inside the tower MLPs."""
    temperature: float = Field(0.1, gt=0)
    """Softmax temperature applied to the cosine scores."""
    loss: Literal["in_batch", "sampled"] = "in_batch"
    """'in_batch': in-batch softmax; 'sampled': softmax against num_negatives uniform items."""
    logq_correction: bool = True
    """in_batch only: subtract log(popularity share) from candidate logits (sampling-bias correction)."""
    id_dropout: float = Field(0.1, ge=0, le=1)
    """Share of id embeddings zeroed in training (teaches feature-only vectors): per example
    in the user tower, per distinct item of the batch in the item tower."""
    user_features: bool = True
    """Use the dataset's user features in the user tower."""
    item_features: bool = True
    """Use the dataset's item features and item embedding matrices in the item tower."""
    user_feature_columns: list[str] | None = None
    """User feature columns to use (None = all)."""
    item_feature_columns: list[str] | None = None
    """Item feature columns to use (None = all)."""
    num_negatives: int = Field(256, ge=1)
    """sampled loss: uniform negative items per batch (shared by all its examples)."""
    batch_size: int = Field(1024, ge=1)
    """Interactions per optimisation step (also the in-batch negative pool)."""
    epochs: int = Field(50, ge=1)
    """Maximum number of passes over the training interactions."""
    fused_optimizer: bool = True
    """torch's fused (single-kernel) optimiser step (the shared setting, on here as for BPR):
    each step updates both whole id tables, which dominates the step's element-wise work."""


class _Tower(nn.Module):
    def __init__(self, n: int, tables: FeatureTables, c: TwoTowerConfig, warm: np.ndarray) -> None:
        super().__init__()
        self.id_emb = nn.Embedding(n, c.embedding_dim)
        self.feats = FeatureEncoder(tables, c.feature_dim)
        self.register_buffer("warm", torch.as_tensor(warm, dtype=torch.bool), persistent=False)
        self.net = mlp(
            [c.embedding_dim + tables.n_fields * c.feature_dim, *c.hidden_dims, c.out_dim], c.dropout
        )
        self.id_dropout = c.id_dropout

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        keep = self.warm[rows]
        if self.training and self.id_dropout > 0:
            keep = keep & (torch.rand(rows.shape, device=rows.device) >= self.id_dropout)
        e = self.id_emb(rows) * keep.unsqueeze(-1)
        return F.normalize(self.net(torch.cat([e, self.feats(rows)], 1)), dim=-1)


class TwoTowerModule(nn.Module):
    """User and item towers; ``loss`` is an in-batch or sampled softmax over cosine/temperature."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        user_tables: FeatureTables,
        item_tables: FeatureTables,
        c: TwoTowerConfig,
        warm_users: np.ndarray,
        item_pop: np.ndarray,
    ) -> None:
        super().__init__()
        self.user = _Tower(n_users, user_tables, c, warm_users)
        self.item = _Tower(n_items, item_tables, c, item_pop > 0)
        share = np.maximum(item_pop, 1.0) / max(float(item_pop.sum()), 1.0)
        self.register_buffer(
            "log_q", torch.as_tensor(np.log(share), dtype=torch.float32), persistent=False
        )
        self.c = c

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        u, i = batch["user"], batch["item"]
        uv = self.user(u)
        t = self.c.temperature
        if self.c.loss == "in_batch":
            cand, col, count = torch.unique(i, return_inverse=True, return_counts=True)
            log_q = self.log_q[cand] if self.c.logq_correction else None
            return in_batch_softmax(uv / t, self.item(cand), col, count, log_q)
        iv = self.item(i)
        neg = batch["negatives"]
        pos = (uv * iv).sum(-1, keepdim=True) / t
        negl = (uv @ self.item(neg).T / t).masked_fill(neg[None, :] == i[:, None], float("-inf"))
        logits = torch.cat([pos, negl], 1)
        return F.cross_entropy(logits, torch.zeros(len(i), dtype=torch.long, device=i.device))


def in_batch_softmax(
    uv: torch.Tensor,
    cand_v: torch.Tensor,
    col: torch.Tensor,
    count: torch.Tensor,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch softmax cross-entropy over the batch's distinct items.

    ``uv`` (B, d) user vectors (already divided by the temperature), ``cand_v`` (U, d) the
    distinct items' vectors, ``col`` (B,) each row's positive as a column of ``cand_v``,
    ``count`` (U,) how often each distinct item occurs in the batch, ``log_q`` (U,) optional
    log sampling probabilities (logQ correction). Equal to the softmax over all B positives of
    the batch as columns with the other copies of a row's own positive masked: a candidate
    occurring c times contributes c·exp(logit), i.e. log(c) is added to its logit, and a row's
    positive column keeps one copy.
    """
    log_c = count.to(uv.dtype).log()
    shift = log_c if log_q is None else log_c - log_q
    logits = torch.addmm(shift[None, :], uv, cand_v.T)  # (B, U): product and shift in one pass
    rows = torch.arange(len(col), device=col.device)
    logits = logits.index_put((rows, col), -log_c[col], accumulate=True)
    return F.cross_entropy(logits, col)


@register("two_tower")
class TwoTower(TorchRecommender):
    """Two-tower retrieval: id + feature towers, cosine scores, in-batch or sampled softmax."""

    Config = TwoTowerConfig
    capabilities = Capabilities(cold_start_items=True)
    config: TwoTowerConfig

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        c = self.config
        if c.user_features and dataset.user_features is not None:
            self.user_tables_ = FeatureTables.from_dataset(dataset, "user", c.user_feature_columns)
        else:
            self.user_tables_ = FeatureTables(n_rows=dataset.n_users)
        has_items = dataset.item_features is not None or bool(dataset.item_embeddings)
        if c.item_features and has_items:
            self.item_tables_ = FeatureTables.from_dataset(dataset, "item", c.item_feature_columns)
        else:
            self.item_tables_ = FeatureTables(n_rows=dataset.n_items)

    def build_module(self) -> nn.Module:
        warm_users = np.diff(self.seen_.indptr) > 0
        return TwoTowerModule(
            self.n_users,
            self.n_items,
            self.user_tables_,
            self.item_tables_,
            self.config,
            warm_users,
            self.item_pop_,
        )

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]:
        c = self.config
        perm = rng.permutation(dataset.n_interactions)
        for s in range(0, len(perm), c.batch_size):
            rows = perm[s : s + c.batch_size]
            batch = {"user": dataset.user_idx[rows], "item": dataset.item_idx[rows]}
            if c.loss == "sampled":
                batch["negatives"] = rng.integers(0, self.n_items, size=c.num_negatives)
            yield {k: torch.as_tensor(v, device=self.device_) for k, v in batch.items()}

    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        m = self.module_
        iv = m.item(torch.arange(self.n_items, device=self.device_) if items is None else items)
        return m.user(users) @ iv.T

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        """Item tower outputs ``(n_items, out_dim)``, L2-normalised (for ANN serving)."""
        self._require_fitted()
        self.module_.eval()
        return (
            self.module_.item(torch.arange(self.n_items, device=self.device_)).float().cpu().numpy()
        )

    @torch.no_grad()
    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """User tower outputs ``(len(user_idx), out_dim)``, L2-normalised."""
        self._require_fitted()
        self.module_.eval()
        u = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=self.device_)
        return self.module_.user(u).float().cpu().numpy()

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {**self.user_tables_.to_state("user."), **self.item_tables_.to_state("item.")}

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_tables_ = FeatureTables.from_state(state, "user.")
        self.item_tables_ = FeatureTables.from_state(state, "item.")
