"""Fairness metrics: exposure of item groups and accuracy gaps between user groups."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["position_weights", "exposure_by_group", "group_means", "group_gap", "popularity_groups"]


def position_weights(k: int) -> np.ndarray:
    """Exposure of ranks 1..k: 1/log2(rank+1), the DCG browsing model."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return 1.0 / np.log2(np.arange(2, k + 2))


def exposure_by_group(
    rec: np.ndarray, item_group: np.ndarray, group_names: list[str], k: int
) -> dict[str, float]:
    """Share of all position-weighted exposure in the top-k lists that each item group receives
    (sums to 1 over groups). ``item_group[i]`` is item i's group code (index into
    ``group_names``); -1 = ungrouped (its exposure counts in the total but no group)."""
    r = np.asarray(rec)
    if r.ndim != 2 or not 1 <= k <= r.shape[1]:
        raise ValueError(f"rec must be (n_users, K>= {k}), got shape {r.shape}")
    r = r[:, :k]
    g = np.asarray(item_group)[r]
    w = np.broadcast_to(position_weights(k), r.shape)
    total = w.sum()
    return {name: float(w[g == c].sum() / total) for c, name in enumerate(group_names)}


def group_means(values: np.ndarray, groups: np.ndarray, group_names: list[str]) -> dict[str, float]:
    """Mean of per-user ``values`` in each user group (``groups[u]`` = code, -1 = unknown);
    groups with no user get NaN."""
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups)
    if v.shape != g.shape:
        raise ValueError(f"values {v.shape} and groups {g.shape} differ in shape")
    return {
        name: float(v[g == c].mean()) if (g == c).any() else float("nan")
        for c, name in enumerate(group_names)
    }


def group_gap(means: Mapping[str, float]) -> float:
    """Largest minus smallest group mean (NaN groups ignored; NaN with fewer than two groups)."""
    vals = [m for m in means.values() if np.isfinite(m)]
    return float(max(vals) - min(vals)) if len(vals) >= 2 else float("nan")


def popularity_groups(item_count: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """Item group codes: 0 = head (the ``head_share`` most popular items in training, ties by
    index), 1 = tail (the rest)."""
    if not 0 < head_share < 1:
        raise ValueError(f"head_share must be in (0, 1), got {head_share}")
    cnt = np.asarray(item_count)
    order = np.lexsort((np.arange(len(cnt)), -cnt))
    n_head = max(int(round(len(cnt) * head_share)), 1)
    out = np.ones(len(cnt), dtype=np.int64)
    out[order[:n_head]] = 0
    return out
