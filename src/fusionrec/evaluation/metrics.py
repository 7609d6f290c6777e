"""Pure metric functions, defined exactly as RecBole 1.2.1 defines them.

Top-k metrics take ``hits``: a bool matrix (n_users, K) where ``hits[u, j]`` says whether the item
at rank j+1 of user u's list is a held-out positive, and ``n_pos``: each user's number of
held-out positives (> 0). Each returns one value per user for the cut-off ``k`` (k <= K);
averages are taken by the caller over users with at least one positive.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "recall",
    "precision",
    "hit",
    "mrr",
    "ndcg",
    "average_precision",
    "TOPK_METRICS",
    "auc",
    "gauc",
    "log_loss",
    "rmse",
    "mae",
]


def _check(hits: np.ndarray, n_pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    hits = np.asarray(hits, dtype=bool)
    n_pos = np.asarray(n_pos, dtype=np.float64)
    if hits.ndim != 2 or hits.shape[0] != n_pos.shape[0]:
        raise ValueError(f"hits must be (n_users, K) matching n_pos; got {hits.shape} and {n_pos.shape}")
    if not 1 <= k <= hits.shape[1]:
        raise ValueError(f"k={k} outside 1..{hits.shape[1]}")
    if np.any(n_pos <= 0):
        raise ValueError("every evaluated user needs at least one positive")
    return hits[:, :k], n_pos


def recall(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """|top-k ∩ positives| / |positives|."""
    h, n = _check(hits, n_pos, k)
    return h.sum(1) / n


def precision(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """|top-k ∩ positives| / k."""
    h, _ = _check(hits, n_pos, k)
    return h.sum(1) / k


def hit(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """1 if any positive is in the top-k."""
    h, _ = _check(hits, n_pos, k)
    return h.any(1).astype(np.float64)


def mrr(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """1 / rank of the first positive in the top-k (0 if none)."""
    h, _ = _check(hits, n_pos, k)
    first = h.argmax(1)
    return np.where(h.any(1), 1.0 / (first + 1), 0.0)


def ndcg(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """DCG of the top-k over the ideal DCG of min(|positives|, k) hits, log2 discount."""
    h, n = _check(hits, n_pos, k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * disc).sum(1)
    ideal = np.cumsum(disc)[np.minimum(n, k).astype(np.int64) - 1]
    return dcg / ideal


def average_precision(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """Σ_j P@j·rel_j over the top-k, divided by min(|positives|, k) (RecBole's MAP@k)."""
    h, n = _check(hits, n_pos, k)
    prec = np.cumsum(h, 1) / np.arange(1, k + 1)
    return (prec * h).sum(1) / np.minimum(n, k)


TOPK_METRICS = {
    "recall": recall,
    "precision": precision,
    "hit": hit,
    "mrr": mrr,
    "ndcg": ndcg,
    "map": average_precision,
}


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; ties count one half (Mann-Whitney U)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative labels")
    from scipy.stats import rankdata

    r = rankdata(s)  # average ranks for ties
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def gauc(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Per-group AUC averaged with weights = group size; groups with one class are skipped."""
    groups = np.asarray(groups)
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    total, weight = 0.0, 0
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    bounds = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        idx = order[a:b]
        yy = y[idx]
        if yy.all() or not yy.any():
            continue
        total += auc(yy, s[idx]) * len(idx)
        weight += len(idx)
    if weight == 0:
        raise ValueError("GAUC needs at least one group with both positive and negative labels")
    return total / weight


def log_loss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(d)))
