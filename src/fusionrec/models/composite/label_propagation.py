"""Label propagation over a user-user similarity graph (Zhou et al. 2004, "local and global
consistency"): F ← α·S·F + (1-α)·Y with S = D^-1/2 W D^-1/2, iterated from F = Y.

- :func:`propagate` — the iteration on any sparse graph and label matrix.
- :func:`user_knn_graph` — a sparse, symmetric top-k cosine user-user graph from interactions.
- :func:`user_tag_matrix` — users × tags (e.g. ml-100k genres in ``class``) from the tags of the
  items each user interacted with, propagated so sparse users borrow their neighbours' tastes;
  usable as user features.
- :class:`LabelPropagation` (registered "label_propagation") — propagates the row-normalised
  interaction matrix itself: a user's scores are the items of similar users, which helps users
  with little history. With ``labels`` (``genres``, ``text``, ``user_tags``: see
  ``interest_labels.py``) it also propagates each user's *interest labels* — the shares of the
  labels of the items they interacted with, plus their own tags — over the same graph and
  scores an item by the cosine of the user's propagated interests and the item's labels,
  mixed with the interaction scores by ``label_weight`` (both z-scored per user).
- :func:`interest_features` / :func:`with_interest_features` — the propagated user interests
  as a users x labels table, or attached to a Dataset as float user features
  (``interest:<label>``) for feature-based models (DeepFM, two-tower).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.composite.interest_labels import (
    item_label_matrix,
    item_side_of_user_tags,
    user_tag_labels,
)
from fusionrec.models.registry import register

__all__ = [
    "interest_features",
    "with_interest_features",
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
    labels: tuple[Literal["genres", "text", "user_tags"], ...] = ()
    """Interest label sources propagated besides the interactions (() = interactions only)."""
    label_weight: float = Field(0.5, ge=0, le=1)
    """Weight of the interest-label score against the propagated interactions (1 = labels only)."""
    genre_field: str = "class"
    """``genres``: the item token/token_seq feature holding the tags."""
    n_topics: int = Field(32, ge=1)
    """``text``: k-means topics over the item text embeddings."""
    text_embedding: str = "text"
    """``text``: attached item embedding used when present (else the text encoder runs)."""
    text_model: str | None = None
    """``text``: encoder name (None = the package default)."""
    user_tag_fields: tuple[str, ...] = ()
    """``user_tags``: user token/token_seq features used as tags (() = all of them)."""


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
        graph = user_knn_graph(x, c.k)
        self.label_names_: list[str] = []
        self.user_interests_ = np.zeros((dataset.n_users, 0), np.float32)
        w = c.label_weight if c.labels else 0.0
        scores = np.zeros((dataset.n_users, dataset.n_items))
        if w < 1:
            y = sp.diags(1.0 / np.maximum(np.asarray(x.sum(1)).ravel(), 1.0)) @ x
            scores += (1 - w) * _zscore(propagate(graph, y, c.alpha, c.n_iter))
        if c.labels:
            f, item_labels, self.label_names_ = _interests(dataset, x, graph, c, seed)
            self.user_interests_ = f.astype(np.float32)
            scores += w * _zscore(_unit(f) @ _unit(item_labels).T)
        self.scores_ = scores.astype(np.float32)

    def user_interests(self) -> pd.DataFrame:
        """The propagated interest labels of every user (users x labels; empty without labels)."""
        self._require_fitted()
        return pd.DataFrame(
            self.user_interests_,
            index=pd.Index(self.users_.ids, name="user_id"),
            columns=self.label_names_,
        )

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        self._require_fitted()
        s = self.scores_[np.asarray(user_idx, dtype=np.int64)]
        return s if item_idx is None else s[:, np.asarray(item_idx, dtype=np.int64)]

    def _get_state(self) -> dict[str, np.ndarray]:
        # label names travel as the UTF-8 bytes of a JSON list (state arrays are numeric)
        names = np.frombuffer(json.dumps(self.label_names_).encode(), dtype=np.uint8)
        return {"scores": self.scores_, "user_interests": self.user_interests_, "label_names": names}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.scores_ = state["scores"]
        # folders saved before interest labels existed hold the scores only
        self.user_interests_ = state.get(
            "user_interests", np.zeros((len(self.scores_), 0), np.float32)
        )
        raw = state.get("label_names")
        self.label_names_ = [] if raw is None else json.loads(bytes(np.asarray(raw, np.uint8)))


def _zscore(s: np.ndarray) -> np.ndarray:
    sd = s.std(1, keepdims=True)
    return (s - s.mean(1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def _interests(
    dataset: Dataset, x: sp.csr_matrix, graph: sp.csr_matrix, c: LabelPropagationConfig, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(propagated user interests, item labels, label names) for the configured sources."""
    item_src = [s for s in c.labels if s != "user_tags"]
    item_labels, names = item_label_matrix(
        dataset, item_src, c.genre_field, c.n_topics, c.text_embedding, c.text_model, seed=seed
    )
    # a user's seed = the label shares of the items they interacted with
    per_item = item_labels / np.maximum(item_labels.sum(1, keepdims=True), 1e-12)
    y = np.asarray(x @ per_item)
    y = y / np.maximum(y.sum(1, keepdims=True), 1e-12)
    if "user_tags" in c.labels:
        tags, tag_names = user_tag_labels(dataset, c.user_tag_fields)
        item_labels = np.concatenate([item_labels, item_side_of_user_tags(x, tags)], 1)
        y = np.concatenate([y, tags / np.maximum(tags.sum(1, keepdims=True), 1.0)], 1)
        names = names + tag_names
    return propagate(graph, y, c.alpha, c.n_iter), item_labels, names


def interest_features(dataset: Dataset, seed: int = 0, **params: Any) -> pd.DataFrame:
    """Users x interest labels of ``dataset`` propagated over the user kNN graph
    (``params``: LabelPropagationConfig fields; ``labels`` defaults to ``("genres",)``)."""
    c = LabelPropagationConfig(**({"labels": ("genres",)} | params))
    if not c.labels:
        raise ConfigError("interest_features needs at least one label source in labels")
    x = sp.csr_matrix(dataset.matrix("csr"), dtype=np.float64)
    x.data[:] = 1.0
    f, _, names = _interests(dataset, x, user_knn_graph(x, c.k), c, seed)
    return pd.DataFrame(f, index=pd.Index(dataset.users.ids, name="user_id"), columns=names)


def with_interest_features(dataset: Dataset, seed: int = 0, **params: Any) -> Dataset:
    """``dataset`` with its users' propagated interests added as float user features named
    ``interest:<label>`` (computed from its own interactions: pass the training split)."""
    feats = interest_features(dataset, seed, **params)
    feats.columns = [f"interest:{n}" for n in feats.columns]
    feats = feats.reset_index(drop=True).astype(np.float64)
    base = dataset.user_features
    table = feats if base is None else pd.concat([base.reset_index(drop=True), feats], axis=1)
    types = dict(dataset.user_feature_types) | {col: "float" for col in feats.columns}
    return dataclasses.replace(dataset, user_features=table, user_feature_types=types, _cache={})
