"""Sampled protocols (RecBole's uni100 / pop100) and the Evaluator's memory-capped blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fusionrec.data import Dataset
from fusionrec.evaluation import Evaluator
from fusionrec.evaluation.sampled import SampledProtocol, parse_protocol, sample_negatives


class FixedScores:
    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)

    def score_indices(self, user_idx, item_idx=None):
        s = self.scores[np.asarray(user_idx)]
        return s if item_idx is None else s[:, item_idx]


def _six_items() -> Dataset:
    # u0 has i0 (train), i2 (valid), i1 (test); u1 has i4, i5 (train); u2's i3 is in no split.
    rows = [("u0", "i0"), ("u0", "i1"), ("u0", "i2"), ("u2", "i3"), ("u1", "i4"), ("u1", "i5")]
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), name="six")
    assert list(ds.items.ids) == [f"i{i}" for i in range(6)]
    return ds


def test_parse_protocol() -> None:
    assert parse_protocol("full") is None
    assert parse_protocol("uni100") == SampledProtocol("uni", 100)
    assert parse_protocol("POP50").name == "pop50"
    for bad in ("uni", "uni0", "pop-1", "labeled", "sampled"):
        with pytest.raises(ValueError, match="uniN"):
            parse_protocol(bad)


def test_uni100_ranks_against_distinct_unseen_items_only() -> None:
    ds = _six_items()
    train = ds.with_interactions(np.array([0, 4, 5]))  # u0: i0; u1: i4, i5
    valid = ds.with_interactions(np.array([2]))  # u0: i2
    test = ds.with_interactions(np.array([1]))  # u0: i1
    scores = np.zeros((3, 6))
    scores[0] = [9, 0.7, 0.95, 0.8, 0.1, 0.9]  # i0 (train) and i2 (valid) outrank the test item
    model = FixedScores(scores)
    # candidates: i1 + negatives from the unseen {i3, i4, i5}; 100 draws hold all three, each counts
    # once: i5 (0.9), i3 (0.8) rank ahead of i1 -> rank 3, NDCG@10 = 1/log2(4), MRR 1/3
    res = Evaluator(metrics=("ndcg", "mrr", "hit"), ks=(1, 10), protocol="uni100").evaluate(
        model, test, exclude=(train, valid)
    )
    assert res.protocol == "uni100" and res.sampled
    assert res.metrics["ndcg@10"] == pytest.approx(1 / np.log2(4))
    assert res.metrics["mrr@10"] == pytest.approx(1 / 3)
    assert res.metrics["hit@1"] == 0.0
    # pop100: i3 has no interaction in any split -> never drawn; i1 ranks 2nd behind i5
    pop = Evaluator(metrics=("ndcg",), ks=(10,), protocol="pop100").evaluate(model, test, exclude=(train, valid))
    assert pop.protocol == "pop100"
    assert pop.metrics["ndcg@10"] == pytest.approx(1 / np.log2(3))
    full = Evaluator(metrics=("ndcg",), ks=(10,)).evaluate(model, test, exclude=(train, valid))
    assert full.protocol == "full" and not full.sampled
    assert full.metrics["ndcg@10"] == pytest.approx(1 / np.log2(4))


def test_one_negative_per_positive_is_drawn_with_replacement() -> None:
    ds = _six_items()
    train = ds.with_interactions(np.array([0, 4, 5]))
    valid = ds.with_interactions(np.array([2]))
    test = ds.with_interactions(np.array([1]))
    scores = np.zeros((3, 6))
    scores[0] = [9, 0.7, 0.95, 0.8, 0.85, 0.9]  # every possible negative outranks i1
    res = Evaluator(metrics=("ndcg",), ks=(10,), protocol="uni1", seed=3).evaluate(
        FixedScores(scores), test, exclude=(train, valid)
    )
    assert res.metrics["ndcg@10"] == pytest.approx(1 / np.log2(3))  # one negative: always rank 2


def test_sample_negatives_avoids_used_items_and_follows_popularity() -> None:
    used = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=np.float32))
    rng = np.random.default_rng(0)
    owner, items = sample_negatives(SampledProtocol("uni", 1000), np.array([0, 1]), np.array([2, 1]), used, np.ones(6), rng)
    assert np.bincount(owner).tolist() == [2000, 1000]  # n_pos * N per user
    assert not np.isin(items[owner == 0], [0, 1]).any() and not np.isin(items[owner == 1], [4, 5]).any()
    assert set(items[owner == 0]) == {2, 3, 4, 5}
    pop = np.array([0, 0, 1, 3, 0, 0], dtype=float)  # user 0 can only get i2 (1/4) and i3 (3/4)
    _, p_items = sample_negatives(SampledProtocol("pop", 4000), np.array([0]), np.array([1]), used, pop, rng)
    assert set(p_items) == {2, 3}
    assert (p_items == 3).mean() == pytest.approx(0.75, abs=0.03)


def test_a_user_with_every_item_is_refused() -> None:
    used = sp.csr_matrix(np.ones((1, 4)))
    with pytest.raises(ValueError, match="every item"):
        sample_negatives(SampledProtocol("uni", 5), np.array([0]), np.array([1]), used, np.ones(4), np.random.default_rng(0))


def test_sampled_negatives_are_seeded() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 40, 30
    dense = rng.random((n_users, n_items)) < 0.2
    dense[:, 0] = True  # every user has a positive
    rows, cols = np.nonzero(dense)
    frame = pd.DataFrame({"user_id": [f"u{r:02d}" for r in rows], "item_id": [f"i{c:02d}" for c in cols]})
    ds = Dataset.from_frames(frame, name="rand")
    test = ds.with_interactions(np.arange(ds.n_interactions)[::3])
    model = FixedScores(rng.random((ds.n_users, ds.n_items)))
    a = Evaluator(metrics=("ndcg",), ks=(5,), protocol="uni10", seed=7).evaluate(model, test)
    b = Evaluator(metrics=("ndcg",), ks=(5,), protocol="uni10", seed=7).evaluate(model, test)
    c = Evaluator(metrics=("ndcg",), ks=(5,), protocol="uni10", seed=8).evaluate(model, test)
    assert a.metrics == b.metrics and a.metrics != c.metrics


def test_memory_cap_limits_rows_per_block_and_keeps_results() -> None:
    ev = Evaluator(batch_size=1024, max_batch_mib=1.0)
    assert ev.rows_per_block(1000) == 262  # 1 MiB / (4 bytes * 1000 items)
    assert ev.rows_per_block(10) == 1024  # batch_size binds
    assert Evaluator(max_batch_mib=1.0).rows_per_block(10**7) == 1  # at least one user
    with pytest.raises(ValueError, match="max_batch_mib"):
        Evaluator(max_batch_mib=0)
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"user_id": [f"u{u:03d}" for u in rng.integers(0, 300, 3000)], "item_id": [f"i{i:03d}" for i in rng.integers(0, 200, 3000)]}
    ).drop_duplicates()
    ds = Dataset.from_frames(frame, name="block")
    train = ds.with_interactions(np.arange(ds.n_interactions)[::2])
    test = ds.with_interactions(np.arange(ds.n_interactions)[1::2])
    model = FixedScores(rng.random((ds.n_users, ds.n_items)))
    big = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate(model, test, exclude=(train,))
    tiny = Evaluator(metrics=("ndcg", "recall"), ks=(10,), max_batch_mib=4 * ds.n_items * 7 / 2**20)
    assert tiny.rows_per_block(ds.n_items) == 7
    small = tiny.evaluate(model, test, exclude=(train,))
    assert small.metrics == big.metrics


def test_experiment_config_selects_the_protocol() -> None:
    from pydantic import ValidationError

    from fusionrec.experiment.config import EvalConfig

    assert EvalConfig().protocol == "full"
    assert EvalConfig.model_validate({"mode": "POP100"}).protocol == "pop100"  # RecBole's key and spelling
    assert EvalConfig.model_validate({"protocol": "uni50"}).protocol == "uni50"
    with pytest.raises(ValidationError, match="uniN"):
        EvalConfig.model_validate({"protocol": "labeled"})
