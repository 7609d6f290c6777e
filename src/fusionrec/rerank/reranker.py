"""One re-ranker object for the Evaluator, the experiment config, the CLI and recommend.

``make_reranker("mmr:0.3", train, model)`` builds a ``ListReranker`` whose
``rerank(user_idx, items, scores, k)`` reorders each row's candidates (the Evaluator's
``Reranker`` protocol); ``recommend_reranked(model, users, k, reranker)`` is the library's
``recommend`` with the re-ranker applied to each user's top-``pool``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.evaluation.context import item_genre_matrix
from fusionrec.evaluation.fairness import popularity_groups
from fusionrec.rerank.calibrated import calibrated_rerank, item_genre_distribution
from fusionrec.rerank.fair import fair_rerank
from fusionrec.rerank.mmr import mmr
from fusionrec.rerank.spec import RerankSpec, parse_rerank_spec

__all__ = ["ListReranker", "make_reranker", "recommend_reranked"]


class ListReranker:
    """Re-ranks (B, N) candidate matrices (item indices and scores, best first).

    Args:
        spec: what to do (``parse_rerank_spec``).
        vectors: (n_items, d) item vectors for MMR.
        genre_dist: (n_items, G) p(genre | item) for calibrated re-ranking.
        history: (n_users, n_items) training matrix: user genre profiles (calibrated).
        protected: (n_items,) bool, the group FA*IR protects (long-tail items).
        fair_alpha: FA*IR's significance level.
    """

    def __init__(
        self,
        spec: RerankSpec | str,
        vectors: np.ndarray | None = None,
        genre_dist: np.ndarray | None = None,
        history: sp.csr_matrix | None = None,
        protected: np.ndarray | None = None,
        fair_alpha: float = 0.1,
    ) -> None:
        self.spec = parse_rerank_spec(spec) if isinstance(spec, str) else spec
        self.pool = self.spec.pool
        need = {"mmr": ("vectors", vectors), "fair": ("protected", protected)}
        if self.spec.method in need and need[self.spec.method][1] is None:
            raise ValueError(f"re-ranker {self.spec.method!r} needs {need[self.spec.method][0]}")
        if self.spec.method == "calibrated" and (genre_dist is None or history is None):
            raise ValueError("re-ranker 'calibrated' needs item genres and the users' training history")
        self.vectors = vectors
        self.genre_dist = genre_dist
        self.history = history
        self.protected = protected
        self.fair_alpha = fair_alpha

    def __repr__(self) -> str:
        return f"ListReranker({self.spec.text!r})"

    def positions(self, user_idx: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        """Chosen positions (B, k) into each row's candidates; -1 = no candidate left."""
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        if items.shape != scores.shape or items.ndim != 2:
            raise ValueError(f"items {items.shape} and scores {scores.shape} must be equal (B, N) matrices")
        w = self.spec.weight
        if self.spec.method == "calibrated":
            assert self.genre_dist is not None and self.history is not None
            profile = _profile(self.genre_dist, self.history[np.asarray(user_idx, dtype=np.int64)])
            return calibrated_rerank(items, scores, profile, self.genre_dist, k, w)
        if self.spec.method == "fair":
            assert self.protected is not None
            return fair_rerank(items, scores, self.protected, k, w, self.fair_alpha)
        assert self.vectors is not None
        kk = min(k, items.shape[1])
        out = np.full((len(items), kk), -1, dtype=np.int64)
        for r in range(len(items)):
            ok = np.flatnonzero(np.isfinite(scores[r]))
            if len(ok) == 0:
                continue
            pick = mmr(items[r, ok], scores[r, ok], self.vectors, kk, 1.0 - w)
            out[r, : len(pick)] = ok[pick]
        return out

    def rerank(
        self, user_idx: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The chosen (B, k) item indices and their model scores (-1 / -inf = padding)."""
        pos = self.positions(user_idx, items, scores, k)
        rows = np.arange(len(pos))[:, None]
        safe = np.where(pos >= 0, pos, 0)
        it = np.where(pos >= 0, np.asarray(items)[rows, safe], -1)
        sc = np.where(pos >= 0, np.asarray(scores, dtype=np.float32)[rows, safe], -np.inf)
        return it.astype(np.int64), sc.astype(np.float32)


def _profile(genre_dist: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
    """Each row's genre distribution over its history items (as the ``calibration`` metric)."""
    h = sp.csr_matrix(history, dtype=np.float64)
    h.data[:] = 1.0
    d = np.asarray(h @ genre_dist)
    tot = d.sum(1, keepdims=True)
    return np.divide(d, tot, out=np.zeros_like(d), where=tot > 0)


def make_reranker(
    spec: RerankSpec | str,
    train: Dataset,
    model: Any = None,
    vectors: np.ndarray | None = None,
    head_share: float = 0.2,
) -> ListReranker:
    """A re-ranker for ``spec`` with its side information from the training split.

    MMR's item vectors: ``vectors`` if given, else the item genres (one-hot, the features
    intra-list diversity is measured on), else ``model.item_vectors()``, else the items'
    training user columns. FA*IR protects the long tail: items outside the ``head_share`` most
    popular in training.
    """
    s = parse_rerank_spec(spec) if isinstance(spec, str) else spec
    genres = item_genre_matrix(train)
    if s.method == "mmr":
        if vectors is None and genres is not None:
            vectors = genres[0].toarray()
        if vectors is None and model is not None and hasattr(model, "item_vectors"):
            vectors = model.item_vectors()
        if vectors is None:
            vectors = train.matrix("csr").T.toarray().astype(np.float32)
        return ListReranker(s, vectors=np.asarray(vectors))
    if s.method == "calibrated":
        if genres is None:
            raise ValueError(f"re-ranker 'calibrated' needs item genres; dataset {train.name!r} has no genre column")
        return ListReranker(s, genre_dist=item_genre_distribution(genres[0]), history=train.matrix("csr"))
    protected = popularity_groups(train.item_popularity(), head_share) == 1
    return ListReranker(s, protected=protected)


def recommend_reranked(
    model: Any,
    users: Sequence[object] | np.ndarray,
    k: int,
    reranker: ListReranker,
    exclude_seen: bool = True,
) -> pd.DataFrame:
    """``model.recommend(users, k)`` with ``reranker`` applied to each known user's top-``pool``
    (same table: user_id, item_id, rank, score, fallback; unknown users keep the model's
    fallback list)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    users = np.atleast_1d(np.asarray(users, dtype=object)).astype(str)
    uidx = model.users_.to_idx(users, unknown="mask")
    known = uidx >= 0
    frames = []
    if known.any():
        items, scores = model.recommend_indices(uidx[known], max(k, reranker.pool), exclude_seen)
        it, sc = reranker.rerank(uidx[known], items, scores, k)
        rows = []
        for uid, its, scs in zip(users[known], it, sc, strict=True):
            ok = (its >= 0) & np.isfinite(scs)
            ids = model.items_.to_ids(its[ok])
            rows.extend((uid, i, r, float(v), False) for r, (i, v) in enumerate(zip(ids, scs[ok], strict=True), 1))
        frames.append(pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "score", "fallback"]))
    if (~known).any():
        fb = model.recommend(users[~known], k, exclude_seen)
        frames.append(fb[["user_id", "item_id", "rank", "score", "fallback"]])
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["user_id", "item_id", "rank", "score", "fallback"])
    order = {u: n for n, u in enumerate(dict.fromkeys(users.tolist()))}
    df["_o"] = df["user_id"].map(order)
    return df.sort_values(["_o", "rank"], kind="stable").drop(columns="_o").reset_index(drop=True)
