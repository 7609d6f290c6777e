"""Negative samplers (vectorised rejection sampling against the positive set)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["NegativeSampler"]


class NegativeSampler:
    """Draws items a user has not interacted with, uniformly or by popularity^alpha.

    Args:
        positives: user x item matrix of known positives (csr).
        alpha: 0 = uniform; >0 samples proportionally to popularity**alpha.
        max_tries: rejection rounds; a user who has seen nearly everything may keep a positive
            after the last round (reported by ``last_collisions``).
    """

    def __init__(self, positives: sp.csr_matrix, alpha: float = 0.0, max_tries: int = 20) -> None:
        m = positives.tocsr()
        self.n_items = m.shape[1]
        r = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        keys = r * self.n_items + m.indices.astype(np.int64)
        # canonical csr (sorted, unique indices per row) already gives sorted unique keys: skip
        # np.unique's sort (seconds at millions of interactions)
        self._keys = keys if m.has_canonical_format else np.unique(keys)
        self.max_tries = max_tries
        self.last_collisions = 0
        if alpha > 0:
            pop = np.asarray(m.sum(0)).ravel().astype(np.float64) ** alpha + 1e-12
            self._cdf = np.cumsum(pop / pop.sum())
        else:
            self._cdf = None

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self._cdf is None:
            return rng.integers(0, self.n_items, size=n, dtype=np.int64)
        return np.minimum(np.searchsorted(self._cdf, rng.random(n)), self.n_items - 1).astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Uniform negatives do not change with the epoch (the curriculum sampler's hook)."""

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users.astype(np.int64) * self.n_items + items
        pos = np.searchsorted(self._keys, q)
        pos[pos >= len(self._keys)] = 0
        return self._keys[pos] == q if len(self._keys) else np.zeros(q.shape, bool)

    def sample(self, users: np.ndarray, n_neg: int, rng: np.random.Generator) -> np.ndarray:
        """(len(users), n_neg) negative item indices."""
        users = np.repeat(np.asarray(users, dtype=np.int64), n_neg)
        items = self._draw(rng, len(users))
        bad = self.is_positive(users, items)
        tries = 0
        while bad.any() and tries < self.max_tries:
            items[bad] = self._draw(rng, int(bad.sum()))
            bad[bad] = self.is_positive(users[bad], items[bad])
            tries += 1
        self.last_collisions = int(bad.sum())
        return items.reshape(-1, n_neg)
