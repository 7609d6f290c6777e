"""Per-user beyond-accuracy metrics of recommendation lists: intra-list diversity, novelty,
serendipity and calibration.

``rec`` is an int matrix (n_users, K) of recommended item indices, best first; each function
returns one value per row for the cut-off ``k``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "intra_list_diversity",
    "novelty",
    "serendipity",
    "genre_distribution",
    "calibration_kl",
    "CALIBRATION_ALPHA",
]

#: Steck (2018): q̃ = (1-α)·q + α·p keeps the KL finite when the list misses a genre of the profile.
CALIBRATION_ALPHA = 0.01


def _rec(rec: np.ndarray, k: int) -> np.ndarray:
    r = np.asarray(rec)
    if r.ndim != 2 or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"rec must be an integer (n_users, K) matrix, got {r.dtype} {r.shape}")
    if not 1 <= k <= r.shape[1]:
        raise ValueError(f"k={k} outside 1..{r.shape[1]}")
    return r[:, :k]


def intra_list_diversity(rec: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cos) between the top-k items' vectors
    (Ziegler et al. 2005); vectors may be item features (e.g. genre one-hot) or text embeddings.
    A zero vector has distance 1 to everything. Lists of one item get 0."""
    r = _rec(rec, k)
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"vectors must be (n_items, d), got shape {v.shape}")
    if r.size and r.max() >= v.shape[0]:
        raise ValueError(f"item index {int(r.max())} outside the {v.shape[0]} item vectors")
    if k < 2:
        return np.zeros(r.shape[0])
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    x = v[r]  # (U, k, d)
    sims = np.einsum("ukd,ujd->ukj", x, x)
    iu = np.triu_indices(k, 1)
    return (1.0 - sims[:, iu[0], iu[1]]).mean(1)


def novelty(rec: np.ndarray, item_count: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Mean self-information -log2(pop(i)) of the top-k, pop(i) = share of users who interacted
    with i in training (Zhou et al. 2010). Items never seen in training count as seen once."""
    r = _rec(rec, k)
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    p = np.maximum(np.asarray(item_count, dtype=np.float64), 1.0) / n_users
    return (-np.log2(p))[r].mean(1)


def serendipity(rec: np.ndarray, hits: np.ndarray, primitive: np.ndarray, k: int) -> np.ndarray:
    """Share of the top-k that are relevant (held-out) *and* absent from a primitive
    recommender's top-k for the same user (Ge et al. 2010; the Evaluator's primitive is
    popularity with the user's seen items masked).

    ``hits[u, j]``: rank j+1 of user u's list is relevant; ``primitive``: (n_users, >=k) items.
    """
    r = _rec(rec, k)
    h = np.asarray(hits, dtype=bool)[:, :k]
    pm = np.asarray(primitive)[:, :k]
    if h.shape != r.shape or pm.shape[0] != r.shape[0]:
        raise ValueError(f"hits {h.shape} and primitive {pm.shape} must match rec {r.shape}")
    in_pm = (r[:, :, None] == pm[:, None, :]).any(2)
    return (h & ~in_pm).sum(1) / k


def genre_distribution(item_genres: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """p(g | list) per row of ``items`` (n_rows, L): each item spreads weight 1 uniformly over
    its genres (Steck 2018, uniform item weights); rows of items without genres get zeros.
    Entries < 0 in ``items`` are padding and ignored."""
    g = sp.csr_matrix(item_genres, dtype=np.float64)
    n_g = np.asarray(g.sum(1)).ravel()
    pg = sp.diags(1.0 / np.maximum(n_g, 1)) @ g  # p(g | i)
    items = np.asarray(items)
    rows = np.repeat(np.arange(items.shape[0]), items.shape[1])
    cols = items.ravel()
    ok = cols >= 0
    sel = sp.csr_matrix((np.ones(ok.sum()), (rows[ok], cols[ok])), shape=(items.shape[0], g.shape[0]))
    d = np.asarray((sel @ pg).todense())
    tot = d.sum(1, keepdims=True)
    return np.divide(d, tot, out=np.zeros_like(d), where=tot > 0)


def calibration_kl(
    profile: np.ndarray, rec_dist: np.ndarray, alpha: float = CALIBRATION_ALPHA
) -> np.ndarray:
    """KL(p || q̃) per user (Steck 2018): p = the user's genre profile (from their training
    history), q = the list's genre distribution, q̃ = (1-α)q + αp. 0 = perfectly calibrated.
    Genres lie on the last axis (any leading shape, e.g. (users, candidates, genres))."""
    p = np.asarray(profile, dtype=np.float64)
    q = np.asarray(rec_dist, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"profile {p.shape} and list distribution {q.shape} differ in shape")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    qt = (1 - alpha) * q + alpha * p
    term = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(qt > 0, qt, 1.0)), 0.0)
    return term.sum(-1)
