"""ltr_rerank: known answers for its train-only feature builders, the no-leak contract of its fit,
and the two-stage score layout (the ml-100k figures: benchmarks/quality_goals.py --ltr)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset
from fusionrec.data.splits import split
from fusionrec.errors import ConfigError
from fusionrec.models.base import load_model
from fusionrec.models.composite import ltr_rerank as ltr_mod
from fusionrec.models.composite.ltr_features import (
    DAY,
    candidates,
    first_seen_days,
    inner_holdout,
    profile_cosine,
    ranks_unseen,
    session_matrix,
    time_window_share,
    zscore_rows,
)
from fusionrec.models.composite.ltr_rerank import LTRRerank, _full_scores
from fusionrec.testing.toy import toy_dataset

pytest.importorskip("lightgbm")

SMALL = {"candidates": 10, "folds": 1, "min_data_in_leaf": 5, "rounds": 5}


def _timed() -> Dataset:
    """3 users, 3 items. Day 0: u0 rates a, b (same second); day 1: u1 rates a; day 2: u1 rates
    c; day 5: u2 rates b and, 2 minutes later, c."""
    rows = [
        ("u0", "a", 0.0), ("u0", "b", 0.0),
        ("u1", "a", 1 * DAY), ("u1", "c", 2 * DAY),
        ("u2", "b", 5 * DAY), ("u2", "c", 5 * DAY + 120),
    ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.from_frames(inter, items=pd.DataFrame({"item_id": list("abc")}), name="timed")


def _ix(ds: Dataset, ids: str) -> list[int]:
    return [int(i) for i in ds.items.to_idx(list(ids))]


def test_time_window_share_known_answer() -> None:
    ds = _timed()
    u0, u1, u2 = ds.users.to_idx(["u0", "u1", "u2"])
    a, b, c = _ix(ds, "abc")
    s0 = time_window_share(ds, 0)
    # u0 is active on day 0 only, where a and b have one rating each out of 2
    assert s0[u0, [a, b, c]] == pytest.approx([0.5, 0.5, 0.0])
    # u1: day 1 (a alone) and day 2 (c alone), half the weight each
    assert s0[u1, [a, b, c]] == pytest.approx([0.5, 0.0, 0.5])
    s1 = time_window_share(ds, 1)
    # window of day 1 is days 0-2: a 2, b 1, c 1 of 4; day 2 is days 1-3: a 1, c 1 of 2
    assert s1[u1, [a, b, c]] == pytest.approx([0.5 * 2 / 4 + 0.5 * 1 / 2, 0.5 * 1 / 4, 0.5 * 1 / 4 + 0.5 * 1 / 2])
    # u2 on day 5: nothing else within one day
    assert s1[u2, [a, b, c]] == pytest.approx([0.0, 0.5, 0.5])


def test_first_seen_days_known_answer() -> None:
    ds = _timed()
    u0, u1, u2 = ds.users.to_idx(["u0", "u1", "u2"])
    a, b, c = _ix(ds, "abc")
    after_last, after_first, span = first_seen_days(ds)
    # c is first rated on day 2; u0's last rating is day 0, u2's last is day 5 + 120 s
    assert after_last[u0, c] == pytest.approx(2.0)
    assert after_last[u2, c] == pytest.approx(2.0 - 5.0 - 120 / DAY)
    assert after_first[u1, a] == pytest.approx(-1.0)
    assert span[[u0, u1, u2]] == pytest.approx([0.0, 1.0, 120 / DAY])


def test_session_matrix_splits_on_the_gap() -> None:
    ds = _timed()
    a, b, c = _ix(ds, "abc")
    one_min = session_matrix(ds, 60).toarray()
    # u0 {a, b}; u1 {a}, {c}; u2 {b}, {c} (the 120 s gap splits them)
    assert sorted(map(tuple, one_min[:, [a, b, c]].astype(int).tolist())) == sorted(
        [(1, 1, 0), (1, 0, 0), (0, 0, 1), (0, 1, 0), (0, 0, 1)]
    )
    assert session_matrix(ds, 300).shape[0] == 4  # u2's two ratings join


def test_profile_cosine_known_answer() -> None:
    x = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.float32)
    prof = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    cos = profile_cosine(x, prof)
    # user 0's profile is item 0's (1, 0); user 1's is (1, 1)/√2
    assert cos[0] == pytest.approx([1.0, 0.0, 1 / np.sqrt(2)])
    assert cos[1] == pytest.approx([1 / np.sqrt(2), 1 / np.sqrt(2), 1.0])
    assert profile_cosine(np.zeros((1, 3)), prof) == pytest.approx(np.zeros((1, 3)))


def test_candidates_and_ranks_skip_seen_items() -> None:
    s = np.array([[0.9, 0.1, 0.5, 0.7]])
    seen = np.array([[True, False, False, False]])
    assert candidates(s, seen, 2).tolist() == [[3, 2]]
    assert ranks_unseen(s, seen).tolist() == [[3, 2, 1, 0]]
    assert zscore_rows(np.array([[1.0, 3.0], [2.0, 2.0]])).tolist() == [[-1.0, 1.0], [0.0, 0.0]]


def test_inner_holdout_takes_the_fraction_per_user_and_keeps_one() -> None:
    inter = pd.DataFrame({"user_id": ["a"] * 10 + ["b"], "item_id": [str(i) for i in range(11)]})
    ds = Dataset.from_frames(inter, name="h")
    hold = inner_holdout(ds, 0.2, np.random.default_rng(0))
    per_user = np.bincount(ds.user_idx[hold], minlength=2)
    assert per_user[ds.users.to_idx(["a"])[0]] == 2
    assert per_user[ds.users.to_idx(["b"])[0]] == 0  # its only interaction stays in the base
    assert (hold == inner_holdout(ds, 0.2, np.random.default_rng(0))).all()
    with pytest.raises(ConfigError, match="fraction"):
        inner_holdout(ds, 1.0, np.random.default_rng(0))


def test_full_scores_put_candidates_first_and_keep_first_stage_order() -> None:
    first = np.array([[0.0, 3.0, 1.0, 2.0, -1.0]])
    cand = np.array([[1, 3]])
    out = _full_scores(first, cand, np.array([[0.2, 0.8]]))
    order = np.argsort(-out[0], kind="stable").tolist()
    assert order == [3, 1, 2, 0, 4]  # ranker swaps the candidates; the rest in EASE's order


def test_fit_never_sees_valid_or_test(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = toy_dataset(n_users=40, n_items=30)
    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=0)
    train_pairs = set(zip(sp.train.user_idx.tolist(), sp.train.item_idx.tolist(), strict=True))
    seen: list[Dataset] = []
    original = ltr_mod.feature_table

    def spy(train, *args, **kwargs):
        seen.append(train)
        return original(train, *args, **kwargs)

    monkeypatch.setattr(ltr_mod, "feature_table", spy)
    m = LTRRerank(**SMALL, features=["knn", "time"]).fit(sp.train, sp.valid, seed=0)
    assert len(seen) == 2  # one inner hold-out fold + the full training split
    for d in seen:
        pairs = set(zip(d.user_idx.tolist(), d.item_idx.tolist(), strict=True))
        assert pairs <= train_pairs
    assert seen[-1].n_interactions == sp.train.n_interactions
    assert seen[0].n_interactions < sp.train.n_interactions
    # the test split is never an argument: scores do not depend on it
    again = LTRRerank(**SMALL, features=["knn", "time"]).fit(sp.train, sp.valid, seed=0)
    np.testing.assert_array_equal(m.score_indices(np.arange(5)), again.score_indices(np.arange(5)))


def test_ranks_own_group_items_first_and_round_trips(tmp_path) -> None:
    ds = toy_dataset(n_users=40, n_items=30)
    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=0)
    m = LTRRerank(**SMALL, features=["time", "knn"]).fit(sp.train, sp.valid, seed=0)
    assert m.groups_ == ("cf", "knn", "time")  # cf always, in FEATURE_GROUPS order
    top = m.recommend_indices(np.arange(ds.n_users), k=3)[0]
    group_a_user = np.arange(ds.n_users) < ds.n_users // 2
    own = (top < ds.n_items // 2) == group_a_user[:, None]
    assert own.mean() > 0.8  # chance: 0.5
    loaded = load_model(m.save(tmp_path / "ltr"))
    np.testing.assert_array_equal(loaded.score_indices(np.arange(4)), m.score_indices(np.arange(4)))
    assert m.ranker_text_.startswith("tree") and set(m.importance_) == set(m.feature_names_)


def test_missing_lightgbm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(ConfigError, match=r"fusionrec\[rerank\]"):
        LTRRerank(**SMALL).fit(toy_dataset(n_users=10, n_items=8))


def test_unavailable_or_unknown_group_is_a_clear_error() -> None:
    inter = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "z"]})
    ds = Dataset.from_frames(inter, name="no-time")
    with pytest.raises(ConfigError, match="'time': the dataset has no timestamps"):
        LTRRerank(**SMALL, features=["time"]).fit(ds)
    with pytest.raises(ConfigError, match="unknown feature group"):
        LTRRerank(features=["timing"])
