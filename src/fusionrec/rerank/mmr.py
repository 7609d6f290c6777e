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

    Vectorised: the candidates' cosine matrix is one matrix product (float32), after which each
    greedy step is a few length-n array operations, so ``k=200`` over 1,000 candidates of
    1,682-d vectors takes milliseconds instead of seconds (one matrix-vector product per step).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    cand = np.asarray(candidates, dtype=np.int64)
    n = len(cand)
    if len(relevance) != n:
        raise ValueError(f"{len(relevance)} relevance values for {n} candidates")
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    if lam == 1.0:  # pure relevance: the stable relevance order
        return np.argsort(-rel, kind="stable")[:k].astype(np.int64)
    v = np.asarray(vectors[cand], dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sim = (v @ v.T).astype(np.float64)  # (n, n) cosine between candidates
    gain = lam * rel
    obj = gain.copy()  # nothing picked yet: no redundancy penalty
    max_sim = np.full(n, -np.inf)
    picked = np.empty(k, dtype=np.int64)
    for t in range(k):
        j = int(np.argmax(obj))
        picked[t] = j
        np.maximum(max_sim, sim[j], out=max_sim)
        obj = gain - (1.0 - lam) * max_sim
        obj[picked[: t + 1]] = -np.inf
    return picked
