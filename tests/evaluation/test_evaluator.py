"""Full-ranking Evaluator: masking, skipped users, several cut-offs, agreement with a loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset, split
from fusionrec.evaluation import Evaluator
from fusionrec.evaluation import metrics as M


class FixedScores:
    """A scorer returning a fixed (n_users, n_items) matrix."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)

    def score_indices(self, user_idx, item_idx=None):
        s = self.scores[np.asarray(user_idx)]
        return s if item_idx is None else s[:, item_idx]


def _full() -> Dataset:
    # 3 users x 5 items (i0..i4); rows are given so that index order = id order
    rows = [
        ("u0", "i0"), ("u0", "i1"), ("u0", "i2"), ("u0", "i3"),
        ("u1", "i4"), ("u1", "i0"),
        ("u2", "i1"), ("u2", "i2"),
    ]  # fmt: skip
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), name="full")


def test_train_and_valid_items_are_masked() -> None:
    ds = _full()
    train = ds.with_interactions(np.array([0]))  # u0: i0
    valid = ds.with_interactions(np.array([1]))  # u0: i1
    test = ds.with_interactions(np.array([2]))  # u0: i2
    # u0 scores i0 > i1 > i3 > i2 > i4: the test item i2 is rank 4 unmasked, rank 2 after masking i0, i1
    scores = np.zeros((3, 5))
    scores[0] = [5, 4, 2, 3, 1]
    ev = Evaluator(metrics=("mrr", "hit"), ks=(1, 2))
    res = ev.evaluate(FixedScores(scores), test, exclude=(train, valid))
    assert res.metrics["mrr@2"] == pytest.approx(0.5)
    assert res.metrics["hit@1"] == 0.0
    unmasked = ev.evaluate(FixedScores(scores), test)
    assert unmasked.metrics["hit@2"] == 0.0
    only_train = ev.evaluate(FixedScores(scores), test, exclude=(train,))
    assert only_train.metrics["mrr@2"] == 0.0  # i1 (valid) still ranks ahead: i1, i3, i2

    class Split:
        pass

    sp = Split()
    sp.train, sp.valid, sp.test = train, valid, test
    assert ev.evaluate_split(FixedScores(scores), sp).metrics == res.metrics
    with pytest.raises(ValueError, match="stage"):
        ev.evaluate_split(FixedScores(scores), sp, stage="nope")


def test_users_without_test_items_are_skipped() -> None:
    ds = _full()
    test = ds.with_interactions(np.array([4, 6]))  # u1: i4, u2: i1 ; u0 has none
    scores = np.tile(np.arange(5, dtype=float)[::-1], (3, 1))  # every user: i0 best ... i4 worst
    res = Evaluator(metrics=("hit",), ks=(1, 5)).evaluate(FixedScores(scores), test)
    assert res.users.tolist() == [1, 2]
    assert res.per_user["hit@5"].tolist() == [1.0, 1.0]
    assert res.per_user["hit@1"].tolist() == [0.0, 0.0]
    sub = Evaluator(metrics=("hit",), ks=(5,)).evaluate(
        FixedScores(scores), test, users=np.array([0, 2])
    )
    assert sub.users.tolist() == [2]
    assert res.slice(np.array([False, True, False]))["users"] == 1


def test_several_ks_from_one_ranking() -> None:
    ds = _full()
    test = ds.with_interactions(np.array([0, 1, 2, 3]))  # u0: all of i0..i3
    scores = np.zeros((3, 5))
    scores[0] = [1, 5, 4, 0.5, 3]  # ranking i1, i2, i4, i0, i3 -> hits 1,1,0,1,1
    res = Evaluator(metrics=("precision", "recall"), ks=(5, 1, 3)).evaluate(
        FixedScores(scores), test
    )
    assert res.metrics["precision@1"] == 1.0
    assert res.metrics["precision@3"] == pytest.approx(2 / 3)
    assert res.metrics["recall@5"] == 1.0
    assert res.metrics["recall@3"] == pytest.approx(0.5)


def test_wrong_score_shape_and_bad_arguments() -> None:
    ds = _full()
    with pytest.raises(ValueError, match="shape"):
        Evaluator().evaluate(FixedScores(np.zeros((3, 4))), ds)
    with pytest.raises(ValueError, match="unknown metrics"):
        Evaluator(metrics=("nope",))
    with pytest.raises(ValueError, match="ks"):
        Evaluator(ks=(0,))


def _brute_force(scores, train, test, metric, k):
    """Per-user loop: rank every non-train item by score, ties by lower index."""
    out = []
    tr, te = train.matrix().toarray() > 0, test.matrix().toarray() > 0
    for u in range(scores.shape[0]):
        if not te[u].any():
            continue
        s = scores[u].astype(np.float64).copy()
        s[tr[u]] = -np.inf
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]
        hits = np.array([[te[u, i] for i in order]])
        out.append(M.TOPK_METRICS[metric](hits, np.array([te[u].sum()]), k)[0])
    return float(np.mean(out))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_brute_force_loop(seed) -> None:
    rng = np.random.default_rng(seed)
    n_u, n_i = 40, 30
    mask = rng.random((n_u, n_i)) < 0.3
    u, i = np.nonzero(mask)
    df = pd.DataFrame({"user_id": [f"u{x}" for x in u], "item_id": [f"i{x}" for x in i]})
    ds = Dataset.from_frames(df, name="rand")
    sp = split(ds, "rs", (0.7, 0.0, 0.3), seed=seed)
    scores = rng.normal(size=(ds.n_users, ds.n_items)).round(1)  # rounding creates ties
    ev = Evaluator(
        metrics=("recall", "precision", "hit", "mrr", "ndcg", "map"), ks=(3, 10), batch_size=7
    )
    res = ev.evaluate(FixedScores(scores), sp.test, exclude=(sp.train,))
    for name in ("recall", "precision", "hit", "mrr", "ndcg", "map"):
        for k in (3, 10):
            assert res.metrics[f"{name}@{k}"] == pytest.approx(
                _brute_force(scores, sp.train, sp.test, name, k)
            ), f"{name}@{k}"
