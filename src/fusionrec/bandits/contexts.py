"""Contexts for the linear policies, from a fitted model's vectors or a Dataset's features.

A :class:`ContextBuilder` turns (user, candidate items) into one feature row per candidate:
the user-item interaction (elementwise product, or the two vectors side by side), optional
per-item and per-user extra columns (item text embeddings, mean ratings, one-hot user
features) and a bias column, optionally standardised with a fixed shift/scale.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Recommender

__all__ = ["ContextBuilder", "model_vectors", "user_feature_matrix"]


def model_vectors(model: Recommender) -> tuple[np.ndarray, np.ndarray]:
    """(user vectors, item vectors) of a fitted embedding model, ``score ~ u . v``.

    Uses the model's ``user_vectors``/``item_vectors`` when it has them, else the ``user`` and
    ``item`` embedding tables of its torch module (BPR, LM-MF, CKE, ...)."""
    model._require_fitted()
    items = model.item_vectors()
    users = None
    fn = getattr(model, "user_vectors", None)
    if callable(fn):
        users = fn(np.arange(model.n_users)) if inspect.signature(fn).parameters else fn()
    else:
        mod = getattr(model, "module_", None)
        emb = getattr(mod, "user", None)
        weight = getattr(emb, "weight", None)
        if weight is not None:
            users = weight.detach().float().cpu().numpy()
    if users is None or items is None:
        raise ConfigError(
            f"model {model.name!r} exposes no user and item vectors; use an embedding model "
            "(bpr, lightgcn, lm_mf, two_tower, static_embedding, ...) or ContextBuilder.from_dataset"
        )
    users, items = np.asarray(users, np.float64), np.asarray(items, np.float64)
    if users.shape[1] != items.shape[1]:
        raise ConfigError(f"model {model.name!r}: user vectors have width {users.shape[1]}, item vectors {items.shape[1]}")
    return users, items


def user_feature_matrix(dataset: Dataset) -> np.ndarray | None:
    """Numeric user feature columns as they are, categorical ones one-hot (None: no features)."""
    t = dataset.user_features
    if t is None or t.shape[1] == 0:
        return None
    parts = []
    for col in t.columns:
        s = t[col]
        if pd.api.types.is_numeric_dtype(s) and dataset.user_feature_types.get(col) != "token":
            v = s.to_numpy(np.float64)
            v = np.nan_to_num((v - np.nanmean(v)) / (np.nanstd(v) or 1.0))
            parts.append(v[:, None])
        else:
            parts.append(pd.get_dummies(s.astype(str)).to_numpy(np.float64))
    return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class ContextBuilder:
    """Builds ``(n_candidates, dim)`` contexts for one user and a candidate list."""

    user_vectors: np.ndarray | None = None
    item_vectors: np.ndarray | None = None
    item_extra: np.ndarray | None = None
    user_extra: np.ndarray | None = None
    kind: Literal["product", "concat"] = "product"
    bias: bool = True
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.user_vectors is None) != (self.item_vectors is None):
            raise ConfigError("ContextBuilder needs both user and item vectors, or neither")
        if self.user_vectors is None and self.item_extra is None and self.user_extra is None:
            raise ConfigError("ContextBuilder needs vectors or extra features")

    @property
    def dim(self) -> int:
        d = 0
        if self.user_vectors is not None:
            d += self.item_vectors.shape[1] * (1 if self.kind == "product" else 2)
        d += 0 if self.item_extra is None else self.item_extra.shape[1]
        d += 0 if self.user_extra is None else self.user_extra.shape[1]
        return d + int(self.bias)

    def raw(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Unscaled feature rows (without bias) for paired arrays of user and item indices."""
        u, i = np.asarray(user_idx, np.int64), np.asarray(item_idx, np.int64)
        parts = []
        if self.user_vectors is not None:
            U, V = self.user_vectors[u], self.item_vectors[i]
            parts += [U * V] if self.kind == "product" else [U, V]
        if self.item_extra is not None:
            parts.append(self.item_extra[i])
        if self.user_extra is not None:
            parts.append(self.user_extra[u])
        return np.concatenate(parts, axis=1)

    def pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Context rows for paired user and item index arrays, shape (len, dim)."""
        X = self.raw(user_idx, item_idx)
        if self.shift is not None:
            X = (X - self.shift) / self.scale
        if self.bias:
            X = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
        return X

    def __call__(self, user_idx: int, item_idx: np.ndarray) -> np.ndarray:
        """Contexts of one user's candidates, shape (len(item_idx), dim)."""
        item_idx = np.asarray(item_idx, np.int64)
        return self.pairs(np.full(len(item_idx), int(user_idx)), item_idx)

    def standardized(self, user_idx: np.ndarray, item_idx: np.ndarray) -> ContextBuilder:
        """A copy whose columns are z-scored with the mean/std over the given pairs."""
        X = self.raw(user_idx, item_idx)
        sd = X.std(axis=0)
        return replace(self, shift=X.mean(axis=0), scale=np.where(sd > 0, sd, 1.0))

    @classmethod
    def from_model(
        cls,
        model: Recommender,
        kind: Literal["product", "concat"] = "product",
        item_extra: np.ndarray | None = None,
        user_extra: np.ndarray | None = None,
        bias: bool = True,
    ) -> ContextBuilder:
        """Contexts from a fitted embedding model's user and item vectors."""
        U, V = model_vectors(model)
        return cls(U, V, item_extra=item_extra, user_extra=user_extra, kind=kind, bias=bias)

    @classmethod
    def from_dataset(cls, dataset: Dataset, item_embedding: str | None = "text", bias: bool = True) -> ContextBuilder:
        """Contexts from a Dataset alone: an item embedding matrix (e.g. LM text embeddings,
        ``Dataset.item_embeddings[item_embedding]``) and one-hot/numeric user features."""
        item = None
        if item_embedding is not None:
            if item_embedding not in dataset.item_embeddings:
                raise ConfigError(
                    f"dataset {dataset.name!r} has no item embedding {item_embedding!r} "
                    f"(has: {', '.join(dataset.item_embeddings) or 'none'})"
                )
            item = np.nan_to_num(np.asarray(dataset.item_embeddings[item_embedding], np.float64))
        return cls(item_extra=item, user_extra=user_feature_matrix(dataset), bias=bias)
