"""Most-popular baseline."""

from __future__ import annotations

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.registry import register

__all__ = ["Pop", "PopConfig"]


class PopConfig(ModelConfig):
    """Pop has no hyper-parameters."""


@register("pop")
class Pop(Recommender):
    """Most popular items: every user gets items ranked by training interaction count."""

    Config = PopConfig
    capabilities = Capabilities(cold_start_users=True)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        self.counts_ = dataset.item_popularity().astype(np.float32)

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        self._require_fitted_state()
        c = self.counts_ if item_idx is None else self.counts_[np.asarray(item_idx)]
        return np.broadcast_to(c, (len(np.atleast_1d(user_idx)), len(c))).copy()

    def score_histories(self, histories) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(histories), len(self.counts_))).copy()

    def _require_fitted_state(self) -> None:
        if not hasattr(self, "counts_"):
            self._require_fitted()

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.counts_ = state["counts"]
