"""Label propagation over a user-user similarity graph (Zhou et al. 2004, "local and global
consistency"): F ← α·S·F + (1-α)·Y with S = D^-1/2 W D^-1/2, iterated from F = Y.

- :func:`propagate` — the iteration on any sparse graph and label matrix.
- :func:`user_knn_graph` — a sparse, symmetric top-k cosine user-user graph from interactions.
- :func:`user_tag_matrix` — users × tags (e.g. ml-100k genres in ``class``) from the tags of the
  items each user interacted with, propagated so sparse users borrow their neighbours' tastes;
  usable as user features.
- :class:`LabelPropagation` (registered "label_propagation") — propagates the row-normalised
  interaction matrix itself: a user's scores are the items of similar users, which helps users
  with little history.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.registry import register

__all__ = [
    "propagate",
    "user_knn_graph",
    "user_tag_matrix",
    "LabelPropagation",
    "LabelPropagationConfig",
]


def _normalise_graph(w: sp.spmatrix) -> sp.csr_matrix:
    w = sp.csr_matrix(w, dtype=np.float64)
    if w.shape[0] != w.shape[1]:
        raise ConfigError(f"the graph must be square, got {w.shape}")
    if w.nnz and w.data.min() < 0:
        raise ConfigError("graph weights must be non-negative")
    d = np.asarray(w.sum(1)).ravel()
    inv = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    return sp.csr_matrix(sp.diags(inv) @ w @ sp.diags(inv))


def propagate(
    graph: sp.spmatrix,
    labels: np.ndarray | sp.spmatrix,
    alpha: float = 0.8,
    n_iter: int = 30,
    tol: float = 1e-6,
) -> np.ndarray:
    """Iterate F ← α S F + (1-α) Y from F = Y (S the symmetric-normalised ``graph``).

    Converges to (1-α)(I - αS)^{-1} Y for 0 ≤ α < 1. Returns a dense float64 array shaped like
    ``labels`` (rows = graph nodes). Stops early when the largest change is below ``tol``.
    """
    if not 0 <= alpha < 1:
        raise ConfigError(f"alpha must be in [0, 1), got {alpha}")
    s = _normalise_graph(graph)
    y = labels.toarray() if sp.issparse(labels) else np.asarray(labels, dtype=np.float64)
    y = y.astype(np.float64)
    if y.shape[0] != s.shape[0]:
        raise ConfigError(f"labels have {y.shape[0]} rows for a graph of {s.shape[0]} nodes")
    f = y.copy()
    for _ in range(n_iter):
        nxt = alpha * (s @ f) + (1 - alpha) * y
        done = np.max(np.abs(nxt - f)) < tol if f.size else True
        f = nxt
        if done:
            break
    return f


def user_knn_graph(interactions: sp.spmatrix, k: int = 50) -> sp.csr_matrix:
    """Symmetric top-``k`` cosine similarity graph between users (no self-loops)."""
    x = sp.csr_matrix(interactions, dtype=np.float64)
    x.data[:] = 1.0
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    inv = sp.diags(np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0))
    xn = inv @ x
    sim = sp.csr_matrix(xn @ xn.T)
    sim.setdiag(0.0)
    sim.eliminate_zeros()
    rows, cols, vals = [], [], []
    for u in range(sim.shape[0]):
        a, b = sim.indptr[u], sim.indptr[u + 1]
        if b == a:
            continue
        v, c = sim.data[a:b], sim.indices[a:b]
        keep = np.argsort(-v, kind="stable")[:k]
        rows.append(np.full(len(keep), u))
        cols.append(c[keep])
        vals.append(v[keep])
    if not rows:
        return sp.csr_matrix(sim.shape)
    g = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape
    )
    return g.maximum(g.T).tocsr()


def user_tag_matrix(
    dataset: Dataset, field: str = "class", k: int = 50, alpha: float = 0.8, n_iter: int = 30
) -> pd.DataFrame:
    """Users × tags interest matrix: each user's share of interactions per tag of ``field`` (an
    item ``token``/``token_seq`` feature), propagated over the user kNN graph. Index = user ids."""
    from fusionrec.models.composite.multitask import _multi_hot

    if dataset.item_features is None or field not in dataset.item_features.columns:
        raise ConfigError(f"dataset {dataset.name!r} has no item feature {field!r} to propagate")
    tags, vocab = _multi_hot(dataset.item_features[field])
    x = sp.csr_matrix(dataset.matrix("csr"), dtype=np.float64)
    x.data[:] = 1.0
    y = np.asarray(x @ tags)
    y = y / np.maximum(y.sum(1, keepdims=True), 1e-12)
    f = propagate(user_knn_graph(x, k), y, alpha, n_iter)
    return pd.DataFrame(f, index=pd.Index(dataset.users.ids, name="user_id"), columns=vocab)


class LabelPropagationConfig(ModelConfig):
    """Label propagation recommender settings."""

    k: int = Field(50, ge=1)
    """Neighbours per user in the cosine kNN graph."""
    alpha: float = Field(0.8, ge=0, lt=1)
    """Propagation strength α (0 = no propagation: users keep their own history)."""
    n_iter: int = Field(20, ge=1)
    """Propagation iterations."""


@register("label_propagation")
class LabelPropagation(Recommender):
    """Item scores propagated over a user-user kNN graph (helps users with little history)."""

    Config = LabelPropagationConfig
    capabilities = Capabilities()

    def __init__(self, config: LabelPropagationConfig | dict | None = None, **params: Any) -> None:
        super().__init__(config, **params)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        c = self.config
        x = sp.csr_matrix(dataset.matrix("csr"), dtype=np.float64)
        x.data[:] = 1.0
        y = sp.diags(1.0 / np.maximum(np.asarray(x.sum(1)).ravel(), 1.0)) @ x
        self.scores_ = propagate(user_knn_graph(x, c.k), y, c.alpha, c.n_iter).astype(np.float32)

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        self._require_fitted()
        s = self.scores_[np.asarray(user_idx, dtype=np.int64)]
        return s if item_idx is None else s[:, np.asarray(item_idx, dtype=np.int64)]

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.scores_ = state["scores"]
