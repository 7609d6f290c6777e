"""ItemKNN: item-item cosine neighbourhood model on the binary interaction matrix.

Similarity (with shrinkage ``s``) between items i and j with user sets U_i, U_j:

    sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|)·sqrt(|U_j|) + s)

Each item keeps its ``k`` most similar other items (its neighbourhood ``N(i)``); a user's score
for item i sums the similarities of the neighbours of i the user interacted with:
``score(u, i) = Σ_{j ∈ N(i)} x_uj · sim(i, j)`` — the formulation of RecBole's ItemKNN.

Everything stays sparse: the co-occurrence matrix is built block by block of items, each block
is truncated to its top-k before the next one, so memory is O(n_items·k) plus one block.
(scipy has no sparse per-row top-k, so it is written here with one lexsort per block.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.registry import register

__all__ = ["ItemKNN", "ItemKNNConfig", "item_cosine_topk"]

# Upper bound on the co-occurrence entries materialised at once while building the neighbourhoods.
_BLOCK_BUDGET = 20_000_000


class ItemKNNConfig(ModelConfig):
    """ItemKNN hyper-parameters (defaults are RecBole's)."""

    k: int = Field(100, ge=1)
    """Neighbours kept per item."""
    shrink: float = Field(0.0, ge=0)
    """Shrinkage added to the cosine denominator (damps similarities built on few co-occurrences)."""


def _topk_per_row(block: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties: lower column first); drops explicit zeros."""
    block.eliminate_zeros()
    counts = np.diff(block.indptr)
    if counts.max(initial=0) <= k:
        return block
    rows = np.repeat(np.arange(block.shape[0]), counts)
    order = np.lexsort((block.indices, -block.data, rows))
    rank = np.arange(len(order)) - np.repeat(block.indptr[:-1], counts)
    keep = order[rank < k]
    keep.sort()  # back to row-major order of the csr arrays
    kept_counts = np.minimum(counts, k)
    indptr = np.concatenate([[0], np.cumsum(kept_counts)])
    return sp.csr_matrix((block.data[keep], block.indices[keep], indptr), shape=block.shape)


def item_cosine_topk(x: sp.csr_matrix, k: int, shrink: float = 0.0) -> sp.csr_matrix:
    """Sparse item x item matrix S with S[i, j] = sim(i, j) for the k neighbours j of item i.

    ``x`` is a binary user x item csr matrix. The diagonal (self-similarity) is excluded.
    """
    x = sp.csr_matrix(x, dtype=np.float32)
    n_items = x.shape[1]
    xt = x.T.tocsr()  # item x user
    norms = np.sqrt(np.asarray(xt.multiply(xt).sum(1)).ravel()).astype(np.float32)
    # Entries block i produces are at most Σ_{u ∈ U_i} |items of u| (capped by n_items).
    user_len = np.diff(x.indptr).astype(np.float64)
    cost = np.minimum(xt @ user_len, n_items) + 1.0
    bounds = [0]
    acc = 0.0
    for i, c in enumerate(cost):
        if acc + c > _BLOCK_BUDGET and i > bounds[-1]:
            bounds.append(i)
            acc = 0.0
        acc += c
    bounds.append(n_items)
    blocks = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        co = (xt[a:b] @ x).tocsr()  # (b-a) x n_items co-occurrence counts
        _zero_offset_diag(co, a)
        rows = np.repeat(np.arange(a, b), np.diff(co.indptr))
        co.data = (co.data / (norms[rows] * norms[co.indices] + shrink)).astype(np.float32)
        co.data[~np.isfinite(co.data)] = 0.0
        blocks.append(_topk_per_row(co, k))
    s = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n_items), dtype=np.float32)
    s.sort_indices()
    return s.astype(np.float32)


def _zero_offset_diag(co: sp.csr_matrix, offset: int) -> None:
    rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
    co.data[co.indices == rows + offset] = 0.0


@register("itemknn")
class ItemKNN(Recommender):
    """Item-based k-nearest neighbours with shrunk cosine similarity (sparse, RecBole-style)."""

    Config = ItemKNNConfig
    capabilities = Capabilities(cold_start_users=True)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        self.sim_ = item_cosine_topk(dataset.matrix("csr"), self.config.k, self.config.shrink)
        self._w = None

    @property
    def _weights(self) -> sp.csr_matrix:
        """W = Sᵀ (W[j, i] = sim(i, j)), so that scores = X·W."""
        if getattr(self, "_w", None) is None:
            self._w = self.sim_.T.tocsr()
        return self._w

    def _score_matrix(self, x: sp.csr_matrix, item_idx: np.ndarray | None) -> np.ndarray:
        w = self._weights
        if item_idx is not None:
            w = w[:, np.asarray(item_idx, dtype=np.int64)]
        return np.asarray((x @ w).toarray(), dtype=np.float32)

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        x = self.seen_[np.atleast_1d(np.asarray(user_idx, dtype=np.int64))]
        return self._score_matrix(x, item_idx)

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        rows = [np.asarray(h, dtype=np.int64) for h in histories]
        r = (
            np.concatenate([np.full(len(h), n) for n, h in enumerate(rows)])
            if rows
            else np.zeros(0, np.int64)
        )
        c = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        x = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), self.n_items))
        x.data[:] = 1.0
        return self._score_matrix(x, None)

    def similar_items(self, items: Sequence[object] | np.ndarray, k: int = 10) -> pd.DataFrame:
        """The learned neighbours of each item, most similar first (at most ``self.config.k``)."""
        self._require_fitted()
        items = np.atleast_1d(np.asarray(items, dtype=object)).astype(str)
        iidx = self.items_.to_idx(items)
        rows = []
        for src, i in zip(items, iidx, strict=True):
            a, b = self.sim_.indptr[i], self.sim_.indptr[i + 1]
            nb, val = self.sim_.indices[a:b], self.sim_.data[a:b]
            order = np.lexsort((nb, -val))[:k]
            for r, o in enumerate(order, 1):
                rows.append((src, self.items_.ids[nb[o]], r, float(val[o])))
        return pd.DataFrame(rows, columns=["item_id", "similar_item_id", "rank", "score"])

    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "sim_data": self.sim_.data.astype(np.float32),
            "sim_indices": self.sim_.indices.astype(np.int64),
            "sim_indptr": self.sim_.indptr.astype(np.int64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        n = len(self.items_)
        self.sim_ = sp.csr_matrix(
            (state["sim_data"], state["sim_indices"], state["sim_indptr"]), shape=(n, n)
        )
        self._w = None
