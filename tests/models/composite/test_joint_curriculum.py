"""The ``joint`` model draws its negatives through the shared curriculum sampler: never a
training positive, only warm items, and easy -> hard over the epochs by popularity or teacher
rank, as every other negative-sampling model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data.dataset import Dataset
from fusionrec.models import get_model
from fusionrec.testing import toy_dataset
from fusionrec.training.curriculum import CurriculumNegativeSampler

_FAST = {"epochs": 3, "batch_size": 64, "embedding_dim": 8, "rel_dim": 4, "patience": 0}
LINEAR = {"difficulty": "popularity", "pacing": "linear", "start": 0.0, "full_at": 3,
          "max_hard": 1.0, "skip_top": 0}  # fmt: skip


def _ladder() -> Dataset:
    """Items a..e seen by 5, 3, 2, 1, 0 users (e is listed with no interaction: cold); u3 and u4
    have seen only a; every user has an unseen warm item."""
    seen = {"u0": "abc", "u1": "abc", "u2": "abd", "u3": "a", "u4": "a"}
    rows = [(u, i) for u, items in seen.items() for i in items]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"])
    ds = Dataset.from_frames(df, items=pd.DataFrame({"item_id": list("abcde")}))
    assert ds.n_items == 5 and ds.item_popularity()[ds.items.to_idx(np.array(["e"]))[0]] == 0
    return ds


@pytest.fixture
def spy(monkeypatch):
    """Records (epoch, hard share, users, negatives) of every curriculum draw."""
    calls: list[tuple[int, float, np.ndarray, np.ndarray]] = []
    real = CurriculumNegativeSampler.sample

    def sample(self, users, n_neg, rng):
        out = real(self, users, n_neg, rng)
        calls.append((self.epoch, self.hard_share, np.array(users), out.copy()))
        return out

    monkeypatch.setattr(CurriculumNegativeSampler, "sample", sample)
    return calls


def _fit(ds, **params):
    return get_model("joint")(**{**_FAST, **params}).fit(ds, seed=0)


def test_joint_paces_its_curriculum_one_step_per_epoch(spy):
    """linear pacing, start 0, full_at 3: hard share 0, 1/2, 1 in epochs 1, 2, 3."""
    _fit(_ladder(), sources=[], curriculum=LINEAR)
    assert sorted({e for e, *_ in spy}) == [1, 2, 3]
    assert {e: s for e, s, *_ in spy} == pytest.approx({1: 0.0, 2: 0.5, 3: 1.0})


def test_joint_negatives_are_warm_unseen_items_and_harder_ones_are_popular(spy):
    """Every negative is a warm item the user has not seen. At hard share 1, u3 and u4 (seen only
    a) draw b, c, d in proportion to popularity 3:2:1 among the warm pool {a, b, c, d} (the
    sampler's indices are positions in that pool: a=0 .. d=3); cold e is never drawn."""
    ds = _ladder()
    m = _fit(ds, sources=[], curriculum=LINEAR, epochs=5)
    seen = ds.matrix("csr")
    pool = m._neg_pool
    assert list(ds.items.ids[pool]) == list("abcd")
    for _, _, users, negs in spy:
        assert not np.asarray(seen[users, pool[negs[:, 0]]]).any()
    assert m._sampler.hard_share == 1.0  # epoch 5 >= full_at
    u3 = ds.users.to_idx(np.array(["u3"] * 6000))
    items = pool[m._sampler.sample(u3, 1, np.random.default_rng(0))[:, 0]]
    counts = np.bincount(items, minlength=5)
    idx = {name: int(ds.items.to_idx(np.array([name]))[0]) for name in "abcde"}
    assert counts[idx["a"]] == 0 and counts[idx["e"]] == 0
    share = counts[[idx["b"], idx["c"], idx["d"]]] / counts.sum()
    np.testing.assert_allclose(share, [3 / 6, 2 / 6, 1 / 6], atol=0.03)


def test_joint_teacher_curriculum_draws_the_teachers_top_unseen_item(spy):
    """Teacher pop, pool of 1, every negative hard: u3 and u4 always get b, the most popular
    item they have not seen."""
    ds = _ladder()
    cur = {"difficulty": "teacher", "teacher": "pop", "teacher_pool": 1, "skip_top": 0,
           "start": 1.0, "max_hard": 1.0}  # fmt: skip
    m = _fit(ds, sources=[], curriculum=cur, epochs=2)
    u34 = ds.users.to_idx(np.array(["u3", "u4"]))
    b = int(ds.items.to_idx(np.array(["b"]))[0])
    for _, share, users, negs in spy:
        assert share == 1.0
        assert (m._neg_pool[negs[np.isin(users, u34), 0]] == b).all()


def test_joint_with_every_source_takes_a_curriculum(spy):
    """The full model (user features, text, KG) under a curriculum: every loss term is still
    logged and the sampler moved through each epoch."""
    pytest.importorskip("sentence_transformers")
    ds = toy_dataset()
    m = _fit(ds, curriculum=LINEAR)
    assert sorted({e for e, *_ in spy}) == [1, 2, 3]
    rec = m.history_.records[-1]
    for term in ("rec", "user", "text", "kg", "reg"):
        assert rec[f"loss_{term}"] > 0, term


def test_without_a_curriculum_negatives_are_never_positives():
    ds = toy_dataset()
    m = get_model("joint")(**{**_FAST, "sources": []})
    m.fit(ds, seed=1)
    seen = ds.matrix("csr")
    users = np.repeat(np.arange(ds.n_users), 50)
    negs = m._neg_pool[m._sampler.sample(users, 1, np.random.default_rng(0))[:, 0]]
    assert not np.asarray(seen[users, negs]).any()
