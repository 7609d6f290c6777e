"""Calibrated re-ranking (Steck 2018, "Calibrated Recommendations"), batched over users.

Greedy: the list S grows one item at a time, each step taking the candidate that maximises
``(1-λ)·Σ_{i∈S} rel(i) - λ·KL(p || q̃(S))`` where p is the user's genre profile, q(S) the
list's genre distribution and q̃ = (1-α)q + αp (the same KL as the ``calibration`` metric).
Relevance is min-max scaled to [0, 1] per user first so λ weighs comparable quantities.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fusionrec.evaluation.diversity import CALIBRATION_ALPHA, calibration_kl

__all__ = ["calibrated_rerank", "item_genre_distribution"]


def item_genre_distribution(item_genres: sp.csr_matrix) -> np.ndarray:
    """p(g | i): each item's weight 1 spread uniformly over its genres (zeros: no genre)."""
    g = sp.csr_matrix(item_genres, dtype=np.float64)
    n = np.asarray(g.sum(1)).ravel()
    return np.asarray((sp.diags(1.0 / np.maximum(n, 1)) @ g).todense())


def _scaled(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(s)
    lo = np.where(valid, s, np.inf).min(1, keepdims=True)
    hi = np.where(valid, s, -np.inf).max(1, keepdims=True)
    span = hi - lo
    rel = np.where(span > 0, (s - lo) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(valid, rel, 0.0), valid


def calibrated_rerank(
    items: np.ndarray,
    scores: np.ndarray,
    profile: np.ndarray,
    genre_dist: np.ndarray,
    k: int,
    lam: float,
    alpha: float = CALIBRATION_ALPHA,
) -> np.ndarray:
    """Positions (B, k) into each row of ``items`` (B, N) chosen by Steck's greedy objective;
    -1 where a row has fewer than k finite-score candidates.

    ``profile`` (B, G): each user's genre distribution; ``genre_dist`` (n_items, G): p(g | i).
    λ = 0 keeps the relevance order; λ = 1 only calibrates.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    items = np.asarray(items)
    b, n = items.shape
    if profile.shape[0] != b or genre_dist.shape[1] != profile.shape[1]:
        raise ValueError(f"profile {profile.shape} / genre_dist {genre_dist.shape} do not match items {items.shape}")
    rel, free = _scaled(scores)
    c = genre_dist[np.where(items >= 0, items, 0)]  # (B, N, G)
    p = np.broadcast_to(np.asarray(profile, np.float64)[:, None, :], c.shape)
    acc = np.zeros((b, genre_dist.shape[1]))
    total = np.zeros(b)
    out = np.full((b, min(k, n)), -1, dtype=np.int64)
    rows = np.arange(b)
    for t in range(out.shape[1]):
        q = (acc[:, None, :] + c) / (t + 1)
        obj = (1 - lam) * (total[:, None] + rel) - lam * calibration_kl(p, q, alpha)
        obj = np.where(free, obj, -np.inf)
        j = obj.argmax(1)
        ok = free[rows, j]
        out[ok, t] = j[ok]
        acc[ok] += c[rows[ok], j[ok]]
        total[ok] += rel[rows[ok], j[ok]]
        free[rows[ok], j[ok]] = False
    return out
