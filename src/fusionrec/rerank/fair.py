"""Fair-exposure re-ranking with FA*IR (Zehlike et al. 2017), batched over users.

A ranking is fair for a protected group (here: long-tail items) with target proportion p
when every prefix of length t holds at least m(t) = F⁻¹(α; t, p) protected items, F the
binomial CDF (the ranked group fairness test at significance α, without the paper's
multiple-test adjustment of α). The greedy algorithm fills each position with the best-scored
remaining item, unless the prefix would fall below m(t): then it takes the best protected one.
Within each group the model's order is kept.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

__all__ = ["fair_minimums", "fair_rerank"]


def fair_minimums(k: int, p: float, alpha: float = 0.1) -> np.ndarray:
    """m(t) for t = 1..k: the least number of protected items a fair prefix of length t holds."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    t = np.arange(1, k + 1)
    return np.nan_to_num(binom.ppf(alpha, t, p)).astype(np.int64)


def fair_rerank(
    items: np.ndarray, scores: np.ndarray, protected: np.ndarray, k: int, p: float, alpha: float = 0.1
) -> np.ndarray:
    """Positions (B, k) into each row of ``items`` (B, N); ``protected[i]``: item i is in the
    protected group. -1 where a row has fewer than k finite-score candidates."""
    items = np.asarray(items)
    b, n = items.shape
    s = np.asarray(scores, dtype=np.float64)
    free = np.isfinite(s)
    prot = np.asarray(protected, dtype=bool)[np.where(items >= 0, items, 0)] & free
    kk = min(k, n)
    need = fair_minimums(kk, p, alpha)
    out = np.full((b, kk), -1, dtype=np.int64)
    n_prot = np.zeros(b, dtype=np.int64)
    rows = np.arange(b)
    for t in range(kk):
        best_any = np.where(free, s, -np.inf).argmax(1)
        prot_free = free & prot
        best_prot = np.where(prot_free, s, -np.inf).argmax(1)
        force = (n_prot < need[t]) & prot_free.any(1)
        j = np.where(force, best_prot, best_any)
        ok = free[rows, j]
        out[ok, t] = j[ok]
        n_prot[ok] += prot[rows[ok], j[ok]]
        free[rows[ok], j[ok]] = False
    return out
