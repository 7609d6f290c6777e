"""Negative-sampling curriculum: ``skip_top`` (hard pool below the very top ranks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.training.curriculum import (
    CurriculumConfig,
    CurriculumNegativeSampler,
    skipped_ranks,
)

HARDEST = {"start": 1.0, "max_hard": 1.0}  # every negative from the hard pool, from epoch 1


def _ladder() -> tuple[Dataset, np.ndarray]:
    """Items a, b, c, d seen by 5, 3, 2, 1 users; users u3 and u4 have seen only a."""
    seen = {"u0": "abcd", "u1": "abc", "u2": "ab", "u3": "a", "u4": "a"}
    rows = [(u, i) for u, items in seen.items() for i in items]
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]))
    users = ds.users.to_idx(np.array(["u3", "u4"], dtype=object))
    return ds, users


def _names(ds: Dataset, idx: np.ndarray) -> np.ndarray:
    return ds.items.ids[idx.ravel()]


def test_skip_top_leaves_the_most_popular_items_out_of_the_hard_pool():
    ds, users = _ladder()
    m = ds.matrix("csr")
    rng = np.random.default_rng(0)
    # skip a, b, c (ranks 1-3): the only hard negative left is d
    only_d = CurriculumNegativeSampler(
        m, CurriculumConfig(difficulty="popularity", skip_top=3, **HARDEST)
    )
    assert set(_names(ds, only_d.sample(np.repeat(users, 50), 4, rng))) == {"d"}
    # without skipping, b (the most popular unseen item) is drawn most
    plain = CurriculumNegativeSampler(
        m, CurriculumConfig(difficulty="popularity", popularity_alpha=1.0, **HARDEST)
    )
    got = _names(ds, plain.sample(np.repeat(users, 1500), 2, rng))
    assert "a" not in got  # a is a positive of both users
    assert np.mean(got == "b") == pytest.approx(3 / 6, abs=0.03)  # weights b:c:d = 3:2:1
    # skip a and b: c and d drawn 2:1 (popularity**1)
    band = CurriculumNegativeSampler(
        m, CurriculumConfig(difficulty="popularity", popularity_alpha=1.0, skip_top=2, **HARDEST)
    )
    got = _names(ds, band.sample(np.repeat(users, 1500), 2, rng))
    assert set(got) == {"c", "d"}
    assert np.mean(got == "c") == pytest.approx(2 / 3, abs=0.03)


def test_a_float_skip_top_is_a_share_of_the_catalogue():
    ds, users = _ladder()
    assert skipped_ranks(0.74, 4) == 2 and skipped_ranks(3, 4) == 3 and skipped_ranks(0.0, 4) == 0
    assert CurriculumConfig().skip_top == 0.05  # default: the top 5% of items are skipped
    s = CurriculumNegativeSampler(
        ds.matrix("csr"), CurriculumConfig(difficulty="popularity", skip_top=0.74, **HARDEST)
    )
    assert s.skip == 2  # a and b skipped: c or d only
    got = _names(ds, s.sample(np.repeat(users, 200), 2, np.random.default_rng(3)))
    assert set(got) == {"c", "d"}


def test_skip_top_is_ignored_before_the_curriculum_starts():
    ds, users = _ladder()
    s = CurriculumNegativeSampler(
        ds.matrix("csr"), CurriculumConfig(difficulty="popularity", skip_top=3, full_at=5)
    )
    s.set_epoch(1)  # start=0: hard share 0, all negatives uniform over unseen b, c, d
    assert s.hard_share == 0.0
    got = _names(ds, s.sample(np.repeat(users, 300), 2, np.random.default_rng(1)))
    assert set(got) == {"b", "c", "d"}


def test_skip_top_with_a_teacher_draws_ranks_below_the_top():
    ds, users = _ladder()
    top = np.tile(np.array([3, 2, 1, 0]), (ds.n_users, 1))  # teacher order per user
    s = CurriculumNegativeSampler(
        ds.matrix("csr"),
        CurriculumConfig(difficulty="teacher", skip_top=1, teacher_pool=3, **HARDEST),
        top,
    )
    got = s.sample(np.repeat(users, 200), 2, np.random.default_rng(2)).ravel()
    assert set(got) == {2, 1}  # ranks 2-3 of the teacher: never 3 (rank 1) nor 0 (rank 4)
    assert s.teacher_top.shape == (ds.n_users, 2)


def test_skip_top_errors_name_the_problem():
    ds, _ = _ladder()
    with pytest.raises(ValidationError, match="skip_top .* below teacher_pool"):
        CurriculumConfig(difficulty="teacher", skip_top=5, teacher_pool=5)
    with pytest.raises(ValidationError, match="share of the catalogue"):
        CurriculumConfig(skip_top=1.5)
    with pytest.raises(ValidationError):
        CurriculumConfig(skip_top=-1)
    with pytest.raises(ConfigError, match="skip_top"):
        CurriculumNegativeSampler(
            ds.matrix("csr"), CurriculumConfig(difficulty="popularity", skip_top=4)
        )
    with pytest.raises(ConfigError, match="skip_top"):
        CurriculumNegativeSampler(
            ds.matrix("csr"),
            CurriculumConfig(difficulty="teacher", skip_top=2, teacher_pool=10),
            np.zeros((ds.n_users, 2), np.int64),
        )
