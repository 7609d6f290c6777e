"""A negative-sampling curriculum from the config of every model that samples negatives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.registry import get_model, list_models
from fusionrec.training.curriculum import CurriculumNegativeSampler

# the registered models that draw negatives (each takes ``curriculum`` in its config)
NEGATIVE_SAMPLING = {
    "bpr",
    "lightgcn",
    "neumf",
    "deepfm",
    "lm_mf",
    "lm_lightgcn",
    "cke",
    "kgat",
    "mm_mf",
    "distill",
    "multitask",
    "joint",  # its config inherits JointConfig; it draws its own warm negatives (see report)
}
LINEAR = {"difficulty": "popularity", "pacing": "linear", "start": 0.0, "full_at": 3,
          "max_hard": 1.0, "skip_top": 0}


def _ladder() -> Dataset:
    """Items a, b, c, d seen by 5, 3, 2, 1 users; u3 and u4 have seen only a."""
    seen = {"u0": "abcd", "u1": "abc", "u2": "ab", "u3": "a", "u4": "a"}
    rows = [(u, i) for u, items in seen.items() for i in items]
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]))


def _names() -> set[str]:
    return {m.name if hasattr(m, "name") else m for m in list_models()}


def test_exactly_the_negative_sampling_models_take_a_curriculum():
    names = _names()
    assert NEGATIVE_SAMPLING <= names
    for name in names:
        fields = get_model(name).Config.model_fields
        assert ("curriculum" in fields) == (name in NEGATIVE_SAMPLING), name
    # a model that samples no negatives refuses the setting (extra="forbid")
    with pytest.raises(ConfigError, match="curriculum: Extra inputs"):
        get_model("ease")(curriculum={"difficulty": "popularity"})


@pytest.fixture
def spy(monkeypatch):
    """Records (epoch, hard share, negatives) of every curriculum draw."""
    calls: list[tuple[int, float, np.ndarray]] = []
    real = CurriculumNegativeSampler.sample

    def sample(self, users, n_neg, rng):
        out = real(self, users, n_neg, rng)
        calls.append((self.epoch, self.hard_share, out.copy()))
        return out

    monkeypatch.setattr(CurriculumNegativeSampler, "sample", sample)
    return calls


@pytest.mark.parametrize("name", ["bpr", "lightgcn", "neumf"])
def test_pacing_steps_one_per_epoch(name, spy):
    """linear pacing, start 0, full_at 3: hard share 0, 1/2, 1 in epochs 1, 2, 3."""
    ds = _ladder()
    get_model(name)(epochs=3, patience=0, curriculum=LINEAR).fit(ds, seed=0)
    epochs = sorted({e for e, _, _ in spy})
    assert epochs == [1, 2, 3]
    share = {e: s for e, s, _ in spy}
    assert share == pytest.approx({1: 0.0, 2: 0.5, 3: 1.0})


def test_teacher_curriculum_draws_the_teachers_top_unseen_items(spy):
    """Teacher pop, pool of 1, every negative hard: u3 and u4 (seen only a) always get b, the
    most popular item they have not seen; other users get their own top unseen item or
    nothing left to draw from (u0 has seen everything)."""
    ds = _ladder()
    cur = {"difficulty": "teacher", "teacher": "pop", "teacher_pool": 1, "skip_top": 0,
           "start": 1.0, "max_hard": 1.0}
    bpr = get_model("bpr")(epochs=2, patience=0, curriculum=cur, num_negatives=3)
    bpr.fit(ds, seed=0)
    users = np.repeat(np.arange(ds.n_users), np.diff(ds.matrix("csr").indptr))
    for _, share, negs in spy:
        assert share == 1.0
        assert negs.shape == (len(users), 3)
    # the sampler's hard pool itself: one column, b for u3/u4, c for u2, d for u1
    pool = bpr._sampler.teacher_top[:, 0]
    named = dict(zip(ds.users.ids, ds.items.ids[pool], strict=True))
    assert named["u3"] == named["u4"] == "b"
    assert named["u2"] == "c" and named["u1"] == "d"


def test_a_model_cannot_be_its_own_teacher():
    cur = {"difficulty": "teacher", "teacher": "bpr"}
    with pytest.raises(ConfigError, match="model itself"):
        get_model("bpr")(epochs=1, curriculum=cur).fit(_ladder(), seed=0)


def test_deepfm_rating_target_refuses_a_curriculum():
    df = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": [4.0, 2.0]})
    ds = Dataset.from_frames(df)
    m = get_model("deepfm")(target="rating", epochs=1, curriculum=LINEAR)
    with pytest.raises(ConfigError, match="target='implicit'"):
        m.fit(ds, seed=0)


def test_without_a_curriculum_the_draws_are_unchanged():
    """The curriculum hook leaves a plain fit's random stream alone: two fits agree, and an
    explicit curriculum of share 0 throughout draws exactly the uniform negatives."""
    ds = _ladder()
    a = get_model("bpr")(epochs=2, patience=0).fit(ds, seed=3)
    zero = dict(LINEAR, max_hard=0.0)
    b = get_model("bpr")(epochs=2, patience=0, curriculum=zero).fit(ds, seed=3)
    users = np.arange(ds.n_users)
    np.testing.assert_allclose(a.score_indices(users), b.score_indices(users), rtol=1e-6)
