"""Filters report exact counts of removed rows and reasons."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset, dedup, filter_kcore, filter_rating


def make(rows: list[tuple[str, str, float, float]]) -> Dataset:
    return Dataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    )


def test_kcore_cascades() -> None:
    # item c has 1 interaction -> removed; then user v drops to 1 interaction -> removed;
    # then item b drops to 2 -> kept (k=2)
    ds = make(
        [
            ("u", "a", 5, 1), ("u", "b", 4, 2),
            ("w", "a", 5, 3), ("w", "b", 3, 4),
            ("v", "b", 2, 5), ("v", "c", 1, 6),
        ]
    )  # fmt: skip
    out, rep = filter_kcore(ds, 2, 2)
    assert out.interactions_frame()[["user_id", "item_id"]].values.tolist() == [
        ["u", "a"], ["u", "b"], ["w", "a"], ["w", "b"],
    ]  # fmt: skip
    assert rep.rows_before == 6 and rep.rows_after == 4 and rep.n_removed == 2
    assert rep.removed == {"user with < 2 interactions": 1, "item with < 2 interactions": 1}
    assert (rep.users_before, rep.users_after, rep.items_before, rep.items_after) == (3, 2, 3, 2)
    assert rep.rounds == 2
    assert out.users == ds.users  # id maps shared
    assert "6 -> 4 interactions" in str(rep)


def test_kcore_disabled_sides() -> None:
    ds = make([("u", "a", 1, 1), ("u", "b", 1, 2), ("v", "a", 1, 3)])
    out, rep = filter_kcore(ds, None, 0)
    assert out.n_interactions == 3 and rep.n_removed == 0
    out, rep = filter_kcore(ds, 2, None)
    assert out.n_interactions == 2 and rep.removed["user with < 2 interactions"] == 1
    with pytest.raises(ValueError):
        filter_kcore(ds, -1, 0)


def test_filter_rating_counts_missing_apart(caplog: pytest.LogCaptureFixture) -> None:
    ds = make([("u", "a", 5, 1), ("u", "b", 2, 2), ("v", "a", np.nan, 3), ("v", "b", 3, 4)])
    with caplog.at_level(logging.INFO, logger="fusionrec.data.filters"):
        out, rep = filter_rating(ds, 3)
    assert out.rating.tolist() == [5.0, 3.0]
    assert rep.removed == {"rating < 3": 1, "rating missing": 1}
    assert "rating>=3: 4 -> 2 interactions" in caplog.text  # logged, never silent
    with pytest.raises(ValueError, match="no ratings"):
        filter_rating(Dataset.from_frames(pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})), 1)


def test_dedup_keeps_last_or_first_in_time() -> None:
    ds = make(
        [
            ("u", "a", 1, 30),
            ("u", "a", 2, 10),
            ("v", "a", 3, 5),
            ("u", "a", 4, 20),
            ("u", "b", 5, 1),
        ]
    )
    last, rep = dedup(ds, keep="last")
    assert last.rating.tolist() == [1.0, 3.0, 5.0]  # t=30 is the latest (u, a)
    assert rep.n_removed == 2 and list(rep.removed.values()) == [2]
    first, _ = dedup(ds, keep="first")
    assert first.rating.tolist() == [2.0, 3.0, 5.0]  # t=10 is the earliest
    with pytest.raises(ValueError):
        dedup(ds, keep="middle")  # type: ignore[arg-type]


def test_dedup_without_timestamps_uses_row_order() -> None:
    ds = Dataset.from_frames(
        pd.DataFrame({"user_id": list("uuu"), "item_id": list("aba"), "rating": [1.0, 2.0, 3.0]})
    )
    out, rep = dedup(ds)
    assert out.rating.tolist() == [2.0, 3.0] and rep.n_removed == 1
