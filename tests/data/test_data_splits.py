"""Splits: RecBole's rounding rule, determinism, partitions, leave-one-out and cold-item properties."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrec.data import Dataset, make_synthetic, split
from fusionrec.data.splits import ratio_counts


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (10, [8, 1, 1]),
        (5, [3, 1, 1]),
        (3, [1, 1, 1]),
        (2, [1, 0, 1]),
        (1, [1, 0, 0]),
        (15, [13, 1, 1]),
        (27, [23, 2, 2]),
    ],
)
def test_recbole_rounding(total: int, expected: list[int]) -> None:
    assert ratio_counts(total, (0.8, 0.1, 0.1)) == expected


def _ds(n_users: int = 30, per: int = 12, seed: int = 0) -> Dataset:
    ds = make_synthetic(n_users, 40, per, seed=seed)
    assert isinstance(ds, Dataset)
    return ds


def _rows(part: Dataset) -> set[tuple[int, int, float]]:
    return set(
        zip(part.user_idx.tolist(), part.item_idx.tolist(), part.timestamp.tolist(), strict=True)
    )


def test_rs_partition_counts_and_determinism(guard_mutation) -> None:
    ds = guard_mutation(_ds())
    a, b, c = (
        split(ds, "rs", (0.8, 0.1, 0.1), seed=2020),
        split(ds, "rs", seed=2020),
        split(ds, "rs", seed=7),
    )
    tr, va, te = a
    assert tr.n_interactions + va.n_interactions + te.n_interactions == ds.n_interactions
    assert (
        not (_rows(tr) & _rows(va)) and not (_rows(tr) & _rows(te)) and not (_rows(va) & _rows(te))
    )
    for u in range(ds.n_users):  # 12 per user -> [10, 1, 1]
        assert (
            [int((p.user_idx == u).sum()) for p in a]
            == ratio_counts(12, (0.8, 0.1, 0.1))
            == [10, 1, 1]
        )
    np.testing.assert_array_equal(a.test.item_idx, b.test.item_idx)
    assert not np.array_equal(a.test.item_idx, c.test.item_idx)
    assert tr.users is ds.users and te.items is ds.items  # id maps shared


def test_loo_takes_last_by_time() -> None:
    rows = [
        ("u", "a", 1.0),
        ("u", "b", 3.0),
        ("u", "c", 2.0),
        ("v", "a", 5.0),
        ("v", "b", 4.0),
        ("w", "c", 1.0),
    ]
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    tr, va, te = split(ds, "loo")

    def frame(d: Dataset) -> list[tuple[str, ...]]:
        return sorted(map(tuple, d.interactions_frame()[["user_id", "item_id"]].values.tolist()))

    assert frame(te) == [("u", "b"), ("v", "a")]  # last in time; w has one interaction -> train
    assert frame(va) == [("u", "c")]  # second last, only for users with >= 3
    assert frame(tr) == [("u", "a"), ("v", "b"), ("w", "c")]


def test_cold_item_test_items_unseen_in_training() -> None:
    ds = _ds(40, 10, seed=1)
    tr, va, te = split(ds, "cold-item", seed=3)
    seen = set(tr.item_idx.tolist())
    assert seen.isdisjoint(te.item_idx.tolist()) and seen.isdisjoint(va.item_idx.tolist())
    assert set(va.item_idx.tolist()).isdisjoint(te.item_idx.tolist())


def test_temporal_protocols_need_timestamps() -> None:
    ds = Dataset.from_frames(pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"]}))
    with pytest.raises(ValueError, match="needs timestamps"):
        split(ds, "loo")
    with pytest.raises(ValueError, match="unknown split protocol"):
        split(ds, "random")  # type: ignore[arg-type]


@st.composite
def interactions(draw: st.DrawFn) -> Dataset:
    n = draw(st.integers(1, 60))
    users = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    df = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": ts})
    return Dataset.from_frames(df)


@settings(max_examples=40, deadline=None)
@given(
    interactions(),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["rs", "temporal", "loo", "global-temporal"]),
)
def test_split_is_a_partition(ds: Dataset, seed: int, protocol: str) -> None:
    parts = split(ds, protocol, seed=seed)  # type: ignore[arg-type]
    # every interaction lands in exactly one part (multiset union of the parts == the data)
    assert _key(parts.train) + _key(parts.valid) + _key(parts.test) == _key(ds)
    assert sum(p.n_interactions for p in parts) == ds.n_interactions
    if protocol in ("rs", "temporal"):
        counts = np.bincount(ds.user_idx, minlength=ds.n_users)
        for u in np.flatnonzero(counts):
            got = [int((p.user_idx == u).sum()) for p in parts]
            assert got == ratio_counts(int(counts[u]), (0.8, 0.1, 0.1))
    again = split(ds, protocol, seed=seed)  # type: ignore[arg-type]
    assert all(np.array_equal(x.item_idx, y.item_idx) for x, y in zip(parts, again, strict=True))


def _key(d: Dataset) -> Counter:
    return Counter(zip(d.user_idx.tolist(), d.item_idx.tolist(), d.timestamp.tolist(), strict=True))


@settings(max_examples=30, deadline=None)
@given(interactions(), st.integers(0, 1000))
def test_cold_item_property(ds: Dataset, seed: int) -> None:
    tr, va, te = split(ds, "cold-item", seed=seed)
    assert set(tr.item_idx.tolist()).isdisjoint(te.item_idx.tolist())
    assert tr.n_interactions + va.n_interactions + te.n_interactions == ds.n_interactions
