"""Distillation into any registered torch student (MF, two-tower, SASRec, LightGCN)."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.models.base import ModelConfig, Recommender, load_model
from fusionrec.models.composite.distill import Distilled
from fusionrec.ranking import mask_seen, topk
from fusionrec.testing import toy_dataset


class _Planted(Recommender):
    """A teacher scoring a_u · b_i with fixed random 2-d vectors (a ranking the data does not
    hold, so only distillation can teach it)."""

    name = "planted_teacher"
    Config = ModelConfig

    def _fit(self, dataset, valid, seed):
        rng = np.random.default_rng(7)
        self.a = rng.normal(size=(dataset.n_users, 2))
        self.b = rng.normal(size=(dataset.n_items, 2))

    def score_indices(self, user_idx, item_idx=None):
        s = (self.a[np.asarray(user_idx)] @ self.b.T).astype(np.float32)
        return s if item_idx is None else s[:, np.asarray(item_idx)]

    def _get_state(self):
        return {"a": self.a, "b": self.b}

    def _set_state(self, state):
        self.a, self.b = state["a"], state["b"]


def _top(model, ds, k):
    users = np.arange(ds.n_users)
    s = np.array(model.score_indices(users), np.float64)
    mask_seen(s, users, ds.matrix("csr"))
    return topk(s, k)[0]


def _agreement(student, teacher, ds) -> float:
    """Share of users whose teacher top-1 unseen item is in the student's top 3."""
    t1 = _top(teacher, ds, 1)[:, 0]
    s3 = _top(student, ds, 3)
    return float(np.mean([t in row for t, row in zip(t1, s3, strict=True)]))


STUDENTS = {
    "bpr": {"embedding_dim": 8, "epochs": 40, "batch_size": 128, "lr": 0.05, "patience": 0,
            "reg_weight": 0.0},
    "two_tower": {"epochs": 40, "batch_size": 128, "lr": 0.02, "patience": 0},
    "lightgcn": {"epochs": 40, "batch_size": 128, "lr": 0.05, "patience": 0},
}


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_pure_distillation_teaches_the_planted_ranking(name):
    ds = toy_dataset(n_users=40, n_items=30, seed=3)
    teacher = _Planted().fit(ds)
    common = {"student": {"name": name, "params": STUDENTS[name]}, "teacher_topk": 5,
              "n_sampled": 10, "kd_users": 40}
    kd = Distilled(lam=1.0, **common).with_teacher(teacher).fit(ds, seed=0)
    own = Distilled(lam=0.0, **common).with_teacher(teacher).fit(ds, seed=0)
    got, base = _agreement(kd, teacher, ds), _agreement(own, teacher, ds)
    assert got >= 0.6 and got >= base + 0.3, (got, base)
    assert "loss_kd" in kd.history_.records[0]


@pytest.mark.parametrize("kind", ["softmax_kl", "ranking"])
def test_sasrec_student_with_both_losses_saves_and_loads(kind, tmp_path):
    ds = toy_dataset(n_users=30, n_items=20, seed=1)
    teacher = _Planted().fit(ds)
    params = {"epochs": 2, "batch_size": 64, "patience": 0, "embedding_dim": 16, "max_len": 10}
    m = Distilled(
        student={"name": "sasrec", "params": params}, distill_loss=kind, teacher_topk=4,
        n_sampled=5, lam=0.5,
    ).with_teacher(teacher).fit(ds, seed=0)
    assert {"loss_kd"} <= set(m.history_.records[-1])
    users = np.arange(ds.n_users)
    back = load_model(m.save(tmp_path / "kd"))
    assert isinstance(back, Distilled) and back.student_.name == "sasrec"
    np.testing.assert_allclose(back.score_indices(users), m.score_indices(users), rtol=1e-5)


def test_a_student_must_be_a_torch_model():
    ds = toy_dataset(n_users=20, n_items=10, seed=0)
    with pytest.raises(ConfigError, match="not a torch model"):
        Distilled(student={"name": "ease"}).with_teacher(_Planted().fit(ds)).fit(ds, seed=0)
    with pytest.raises(ConfigError, match="student's params"):
        Distilled(student={"name": "bpr"}, curriculum={"difficulty": "popularity"})
