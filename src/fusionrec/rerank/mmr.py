"""Maximal marginal relevance (Carbonell & Goldstein 1998) over item vectors."""

from __future__ import annotations

import numpy as np

__all__ = ["mmr"]


def mmr(
    candidates: np.ndarray, relevance: np.ndarray, vectors: np.ndarray, k: int, lam: float
) -> np.ndarray:
    """Pick ``k`` of ``candidates`` greedily maximising ``lam*rel - (1-lam)*max cos(sim to picked)``.

    ``relevance`` is min-max scaled to [0, 1] first so ``lam`` weighs comparable quantities;
    ``lam=1`` keeps the relevance order. Returns positions into ``candidates``.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    n = len(candidates)
    k = min(k, n)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    v = np.asarray(vectors[candidates], dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    max_sim = np.full(n, -np.inf)
    picked: list[int] = []
    free = np.ones(n, dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        obj = lam * rel - (1.0 - lam) * penalty
        obj[~free] = -np.inf
        j = int(np.argmax(obj))
        picked.append(j)
        free[j] = False
        max_sim = np.maximum(max_sim, v @ v[j])
    return np.asarray(picked, dtype=np.int64)
