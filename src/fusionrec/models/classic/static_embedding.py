"""A plain embedding model (score = user vector · item vector) and a synthetic instance of it.

``static_embedding`` fits by truncated SVD of the interaction matrix, or is made up by
``StaticEmbedding.synthetic`` (clustered random vectors, any number of items) to exercise the
ANN path of the service at scale. It is also the reference of the optional ``user_vectors()``
protocol the service uses to decide that a model can be served through an ANN index.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.registry import register

__all__ = ["StaticEmbedding", "StaticEmbeddingConfig"]


class StaticEmbeddingConfig(ModelConfig):
    _aliases: ClassVar[dict[str, str]] = {"dim": "embedding_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    embedding_dim: int = Field(64, ge=1, le=4096)
    """Embedding size (SVD rank when fitted; was ``dim``)."""


@register("static_embedding")
class StaticEmbedding(Recommender):
    """Dot-product embedding model: truncated SVD when fitted, or synthetic vectors."""

    Config = StaticEmbeddingConfig
    capabilities = Capabilities(cold_start_users=True)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        from scipy.sparse.linalg import svds

        x = dataset.matrix("csr").astype(np.float64)
        k = max(1, min(self.config.embedding_dim, min(x.shape) - 1))
        v0 = np.random.default_rng(seed).standard_normal(min(x.shape))
        u, s, vt = svds(x, k=k, v0=v0)
        root = np.sqrt(s)
        self.U_ = (u * root).astype(np.float32)
        self.V_ = (vt.T * root).astype(np.float32)

    @classmethod
    def synthetic(
        cls,
        n_users: int = 1000,
        n_items: int = 1_000_000,
        dim: int = 64,
        n_clusters: int = 256,
        history_len: int = 20,
        seed: int = 0,
    ) -> StaticEmbedding:
        """A fitted-looking model with clustered random vectors (no dataset needed)."""
        rng = np.random.default_rng(seed)
        centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
        item_cluster = rng.integers(0, n_clusters, n_items)
        v = centers[item_cluster] + 0.5 * rng.standard_normal((n_items, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        user_cluster = rng.integers(0, n_clusters, n_users)
        u = centers[user_cluster] + 0.5 * rng.standard_normal((n_users, dim), dtype=np.float32)
        m = cls(embedding_dim=dim)
        m.U_, m.V_ = u.astype(np.float32), v.astype(np.float32)
        m.users_ = IdMap(np.char.add("u", np.arange(n_users).astype(str)), name="user")
        m.items_ = IdMap(np.char.add("i", np.arange(n_items).astype(str)), name="item")
        rows = np.repeat(np.arange(n_users), history_len)
        cols = rng.integers(0, n_items, n_users * history_len)
        seen = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items)
        )
        seen.sum_duplicates()
        seen.data[:] = 1.0
        m.seen_ = seen
        m.item_pop_ = np.asarray(seen.sum(0)).ravel().astype(np.float32)
        m.item_titles_ = None
        m.fitted_ = True
        return m

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        u = self.U_[np.asarray(user_idx, dtype=np.int64)]
        v = self.V_ if item_idx is None else self.V_[np.asarray(item_idx, dtype=np.int64)]
        return np.asarray(u @ v.T, dtype=np.float32)

    def score_histories(self, histories) -> np.ndarray:
        q = np.stack(
            [
                self.V_[np.asarray(h, dtype=np.int64)].mean(0)
                if len(h)
                else np.zeros(self.V_.shape[1], np.float32)
                for h in histories
            ]
        )
        return np.asarray(q @ self.V_.T, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.V_

    def user_vectors(self) -> np.ndarray:
        """User vectors such that ``score = user_vectors()[u] @ item_vectors()[i]``."""
        return self.U_

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"U": self.U_, "V": self.V_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.U_, self.V_ = state["U"], state["V"]
