"""Deterministic train/valid/test splits. Every split returns Datasets sharing the id maps.

Protocols:
- ``rs``: per-user random ratio split (RecBole ``RS`` with ``order: RO, group_by: user``): the
  interactions are shuffled once, grouped by user, and each user's list is cut by ratio with
  RecBole's rounding (every part but the first rounded down; a part that would get less than
  one interaction gets one while the training part keeps more than one).
- ``temporal``: the same per-user cut after sorting each user's interactions by time.
- ``global-temporal``: one cut of all interactions by time (the future is never seen in training).
- ``loo``: leave-one-out by time: each user's last interaction is test, the one before valid.
- ``cold-item``: a random fraction of items is held out whole; their interactions go to
  valid/test, so test items were never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fusionrec.data.dataset import Dataset

__all__ = ["Split", "split", "PROTOCOLS", "ratio_counts"]

Protocol = Literal["rs", "temporal", "global-temporal", "loo", "cold-item"]
PROTOCOLS: tuple[str, ...] = ("rs", "temporal", "global-temporal", "loo", "cold-item")


@dataclass(frozen=True)
class Split:
    train: Dataset
    valid: Dataset
    test: Dataset
    protocol: str

    def __iter__(self):
        return iter((self.train, self.valid, self.test))


def ratio_counts(total: int, ratios: tuple[float, ...]) -> list[int]:
    """Sizes of each part for ``total`` items cut by ``ratios`` (RecBole's rounding rule)."""
    s = float(sum(ratios))
    ratios = tuple(r / s for r in ratios)
    cnt = [int(r * total) for r in ratios]
    cnt[0] = total - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def _group_cut(ds: Dataset, order: np.ndarray, ratios: tuple[float, ...]) -> list[np.ndarray]:
    """Cut each user's interactions (taken in ``order``) by ratio; return row indices per part.

    Vectorised: each row's rank inside its user's list is compared with that user's cut
    points (computed once per distinct interaction count), so 25M rows need no Python loop
    over users.
    """
    users = ds.user_idx[order]
    grouped = order[np.argsort(users, kind="stable")]
    counts = np.bincount(ds.user_idx, minlength=ds.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)])
    g_users = ds.user_idx[grouped]
    rank = np.arange(len(grouped)) - starts[g_users]
    distinct = np.unique(counts)
    table = np.array([np.concatenate([[0], np.cumsum(ratio_counts(int(c), ratios))]) for c in distinct])
    cuts = table[np.searchsorted(distinct, counts)]  # (n_users, parts + 1) cut points
    part = np.zeros(len(grouped), dtype=np.int8)
    for p in range(1, len(ratios)):
        part += rank >= cuts[g_users, p]
    return [np.sort(grouped[part == p]) for p in range(len(ratios))]


def _time(ds: Dataset, protocol: str) -> np.ndarray:
    if ds.timestamp is None:
        raise ValueError(f"protocol {protocol!r} needs timestamps, and dataset {ds.name!r} has none")
    return ds.timestamp


def split(
    ds: Dataset,
    protocol: Protocol = "rs",
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 2020,
) -> Split:
    """Split ``ds`` under ``protocol`` (see module doc); deterministic for a given seed."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be three non-negative numbers, got {ratios}")
    rng = np.random.default_rng(seed)
    n = ds.n_interactions
    if protocol == "rs":
        parts = _group_cut(ds, rng.permutation(n), ratios)
    elif protocol == "temporal":
        parts = _group_cut(ds, np.argsort(_time(ds, protocol), kind="stable"), ratios)
    elif protocol == "loo":
        ts = _time(ds, protocol)
        order = np.lexsort((np.arange(n), ts, ds.user_idx))
        users = ds.user_idx[order]
        last = np.r_[users[1:] != users[:-1], True]
        second = np.r_[last[1:], False] & (np.r_[users[1:] == users[:-1], False])
        # a user with a single interaction keeps it for training
        counts = np.bincount(ds.user_idx, minlength=ds.n_users)
        single = counts[users] == 1
        test_rows = order[last & ~single]
        valid_rows = order[second & (counts[users] >= 3)]
        train_mask = np.ones(n, bool)
        train_mask[test_rows] = False
        train_mask[valid_rows] = False
        parts = [np.flatnonzero(train_mask), np.sort(valid_rows), np.sort(test_rows)]
    elif protocol == "global-temporal":
        order = np.argsort(_time(ds, protocol), kind="stable")
        c = np.cumsum([0, *ratio_counts(n, ratios)])
        parts = [np.sort(order[c[p] : c[p + 1]]) for p in range(3)]
    else:  # cold-item
        present = np.unique(ds.item_idx)
        perm = rng.permutation(present)
        c = np.cumsum([0, *ratio_counts(len(perm), ratios)])
        group = np.zeros(ds.n_items, dtype=np.int64)
        group[perm[c[1] : c[2]]] = 1
        group[perm[c[2] :]] = 2
        g = group[ds.item_idx]
        parts = [np.flatnonzero(g == p) for p in range(3)]
    names = ("train", "valid", "test")
    train, valid, test = (ds.with_interactions(p, name=f"{ds.name}:{nm}") for p, nm in zip(parts, names, strict=True))
    return Split(train, valid, test, protocol)
