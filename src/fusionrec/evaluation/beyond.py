"""Catalogue and popularity metrics of recommendation lists, defined exactly as RecBole 1.2.1
defines them (``recbole/evaluator/metrics.py``: ItemCoverage, GiniIndex, ShannonEntropy,
TailPercentage, AveragePopularity), vectorised.

Every function takes ``rec``: an int matrix (n_users, K) of recommended item indices, best
first, and a cut-off ``k`` (1 <= k <= K). ``item_count`` is each item's number of training
interactions (indexed by item index). Per-user metrics return one value per user (RecBole
averages them over users); catalogue metrics return one float.

RecBole's definitions, kept as they are (a parity test runs RecBole's own code):

* ShannonEntropy divides the entropy of the recommended-item distribution by the number of
  distinct recommended items.
* GiniIndex ranks only the recommended items (unrecommended items count as zeros at the bottom).
* TailPercentage's tail is the ``tail_ratio`` share of items *with at least one training
  interaction*, least popular first (ties broken by item index); with ``tail_ratio > 1`` it is
  every item with at most that many training interactions. Items never seen in training are
  not tail items (RecBole's item counter only holds items seen in training).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "item_coverage",
    "gini_index",
    "shannon_entropy",
    "tail_items",
    "tail_percentage",
    "average_popularity",
]


def _rec(rec: np.ndarray, k: int) -> np.ndarray:
    r = np.asarray(rec)
    if r.ndim != 2:
        raise ValueError(f"rec must be a (n_users, K) matrix of item indices, got shape {r.shape}")
    if not 1 <= k <= r.shape[1]:
        raise ValueError(f"k={k} outside 1..{r.shape[1]}")
    if r.shape[0] == 0:
        raise ValueError("rec has no users")
    r = r[:, :k]
    if not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"rec must hold integer item indices, got dtype {r.dtype}")
    return r


def _counts(rec: np.ndarray) -> np.ndarray:
    """How often each distinct recommended item appears (order irrelevant)."""
    _, c = np.unique(rec.ravel(), return_counts=True)
    return c


def item_coverage(rec: np.ndarray, n_items: int, k: int) -> float:
    """|∪_u top-k(u)| / |I|."""
    r = _rec(rec, k)
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    return float(len(np.unique(r)) / n_items)


def gini_index(rec: np.ndarray, n_items: int, k: int) -> float:
    """Σ_i (2i - |I| - 1)·P(i) / (|I|·Σ P), P(i) = times item i is recommended, non-decreasing."""
    r = _rec(rec, k)
    c = np.sort(_counts(r))
    if len(c) > n_items:
        raise ValueError(f"{len(c)} distinct items recommended but n_items={n_items}")
    idx = np.arange(n_items - len(c) + 1, n_items + 1)
    return float(np.sum((2 * idx - n_items - 1) * c) / r.size / n_items)


def shannon_entropy(rec: np.ndarray, k: int) -> float:
    """-Σ p(i) log p(i) over recommended items (p = share of all list slots), divided by the
    number of distinct recommended items (RecBole's normalisation)."""
    r = _rec(rec, k)
    p = _counts(r) / r.size
    return float(-(p * np.log(p)).sum() / len(p))


def tail_items(item_count: np.ndarray, tail_ratio: float = 0.1) -> np.ndarray:
    """Boolean mask over items: RecBole's long-tail set (see the module docstring)."""
    cnt = np.asarray(item_count)
    if tail_ratio <= 0:
        tail_ratio = 0.1  # RecBole's default for a missing or non-positive ratio
    seen = np.flatnonzero(cnt > 0)
    mask = np.zeros(len(cnt), dtype=bool)
    if tail_ratio > 1:
        mask[seen[cnt[seen] <= tail_ratio]] = True
        return mask
    if len(seen) == 0:
        return mask
    order = seen[np.lexsort((seen, cnt[seen]))]  # by count, then item index
    cut = max(int(len(order) * tail_ratio), 1)
    mask[order[:cut]] = True
    return mask


def tail_percentage(rec: np.ndarray, item_count: np.ndarray, k: int, tail_ratio: float = 0.1) -> np.ndarray:
    """Per user: share of the top-k that are long-tail items."""
    r = _rec(rec, k)
    return tail_items(item_count, tail_ratio)[r].mean(1)


def average_popularity(rec: np.ndarray, item_count: np.ndarray, k: int) -> np.ndarray:
    """Per user: mean training interaction count of the top-k items."""
    r = _rec(rec, k)
    return np.asarray(item_count, dtype=np.float64)[r].mean(1)
