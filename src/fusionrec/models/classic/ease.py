"""EASE (Steck 2019): closed-form item-item linear autoencoder with a zero diagonal."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.registry import register

__all__ = ["EASE", "EASEConfig", "ease_weights", "interaction_gram"]


class EASEConfig(ModelConfig):
    reg_weight: float = Field(250.0, gt=0)
    """L2 regularisation λ added to the Gram matrix diagonal."""
    max_items: int = Field(60_000, ge=1)
    """Refuse to fit above this many items (the dense n_items² solve would not fit in memory)."""


def interaction_gram(dataset: Dataset, max_items: int, model: str) -> np.ndarray:
    """Dense XᵀX (float64) of the training interactions; refuses above ``max_items`` items."""
    n = dataset.n_items
    if n > max_items:
        raise ConfigError(
            f"{model} needs a dense {n}x{n} matrix; raise max_items if you have the memory"
        )
    x = dataset.matrix("csr").astype(np.float64)
    return np.asarray((x.T @ x).todense())


def ease_weights(gram: np.ndarray, reg_weight: float) -> np.ndarray:
    """EASE's closed form on a Gram matrix (changed in place): B = I - P·diag(1/diag(P)) with
    P = (G + λI)⁻¹ and a zero diagonal (float64)."""
    gram[np.diag_indices(gram.shape[0])] += reg_weight
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices(gram.shape[0])] = 0.0
    return b


@register("ease")
class EASE(Recommender):
    """EASE: B = I - P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹; score = x_u·B."""

    Config = EASEConfig
    capabilities = Capabilities(cold_start_users=True)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        g = interaction_gram(dataset, self.config.max_items, "EASE")
        self.B_ = ease_weights(g, self.config.reg_weight).astype(np.float32)

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        x = self.seen_[np.asarray(user_idx, dtype=np.int64)]
        b = self.B_ if item_idx is None else self.B_[:, np.asarray(item_idx)]
        return np.asarray(x @ b, dtype=np.float32)

    def score_histories(self, histories) -> np.ndarray:
        x = _history_matrix(histories, self.B_.shape[0])
        return np.asarray(x @ self.B_, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.B_.T

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.B_ = state["B"]


def _history_matrix(histories, n_items: int) -> sp.csr_matrix:
    rows = (
        np.concatenate([np.full(len(h), r) for r, h in enumerate(histories)])
        if histories
        else np.zeros(0, int)
    )
    cols = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if histories
        else np.zeros(0, int)
    )
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), n_items)
    )
    m.data[:] = 1.0
    return m
