"""Knowledge distillation and the negative-sampling curriculum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import load_model
from fusionrec.models.composite.distill import Distilled, distill, parameter_count
from fusionrec.models.registry import get_model
from fusionrec.testing import check_recommender, checkerboard, toy_dataset
from fusionrec.training.curriculum import (
    CurriculumConfig,
    CurriculumNegativeSampler,
    ProgressiveUnfreezing,
    pacing,
)

FAST = {"epochs": 30, "batch_size": 64, "lr": 0.05, "patience": 0}


def test_distilled_student_matches_teacher_top_item():
    ds, target = checkerboard(users_per_group=6, items_per_group=4)
    teacher = get_model("ease")(reg_weight=1.0).fit(ds)
    t_top = teacher.recommend(list(target), k=1).set_index("user_id")["item_id"]
    assert t_top.to_dict() == target  # the teacher knows the answer
    student = distill(
        teacher,
        ds,
        seed=0,
        embedding_dim=4,
        lam=0.9,
        temperature=1.0,
        teacher_topk=3,
        n_sampled=4,
        **FAST,
    )
    s_top = student.recommend(list(target), k=1).set_index("user_id")["item_id"]
    assert s_top.to_dict() == t_top.to_dict()
    assert parameter_count(student) == (12 + 8) * 4
    assert parameter_count(teacher) == 8 * 8


def test_kd_loss_pulls_student_towards_teacher_order():
    """With λ=1 only the teacher teaches: a teacher with the *reverse* of the data's taste wins."""
    ds, target = checkerboard(users_per_group=6, items_per_group=4)

    class _Reverse:
        name = "reverse"
        fitted_ = True
        n_users, n_items = ds.n_users, ds.n_items
        users_, items_ = ds.users, ds.items

        @staticmethod
        def score_indices(rows, item_idx=None):
            # every user is told to like the other group's items
            group_u = np.char.startswith(ds.users.ids[rows].astype(str), "a")
            group_i = np.char.startswith(ds.items.ids.astype(str), "A")
            return (group_u[:, None] != group_i[None, :]).astype(np.float32) + np.linspace(
                0, 0.1, ds.n_items
            )[None]

    student = (
        Distilled(embedding_dim=4, lam=1.0, teacher_topk=4, n_sampled=4, **FAST)
        .with_teacher(_Reverse())
        .fit(ds)
    )
    top = student.recommend(list(target), k=1)
    for uid, item in zip(top["user_id"], top["item_id"], strict=True):
        assert uid[0].upper() != item[0], f"{uid} got {item}"


def test_ranking_distillation_and_conformance():
    report = check_recommender(
        Distilled,
        {
            "teacher": {"name": "ease"},
            "embedding_dim": 4,
            "distill_loss": "ranking",
            "teacher_topk": 5,
            "epochs": 3,
            "batch_size": 128,
        },
    )
    assert "save_load" in report.passed


def test_student_alone_needs_no_teacher_and_saves_without_it(tmp_path):
    ds = toy_dataset(n_users=30, n_items=20)
    m = Distilled(lam=0.0, embedding_dim=4, epochs=2, batch_size=128).fit(ds)
    back = load_model(m.save(tmp_path / "s"))
    np.testing.assert_allclose(back.score(ds.users.ids), m.score(ds.users.ids), rtol=1e-6)
    with pytest.raises(ConfigError, match="needs a teacher"):
        Distilled(lam=0.5, epochs=1).fit(ds)
    with pytest.raises(ConfigError, match="either teacher or teacher_path"):
        Distilled(teacher={"name": "ease"}, teacher_path="x")


def test_teacher_from_saved_folder(tmp_path):
    ds = toy_dataset(n_users=30, n_items=20)
    teacher = get_model("ease")().fit(ds)
    path = teacher.save(tmp_path / "teacher")
    m = Distilled(teacher_path=str(path), embedding_dim=4, epochs=2, batch_size=128).fit(ds)
    assert m.fitted_ and m._teacher is None
    other = toy_dataset(n_users=31, n_items=20)
    with pytest.raises(ConfigError, match="different users/items"):
        Distilled(teacher_path=str(path), epochs=1).fit(other)


# ----------------------------------------------------------------- curriculum
def test_pacing_schedules():
    assert pacing(1, "linear", 0.0, 5) == 0.0
    assert pacing(3, "linear", 0.0, 5) == 0.5
    assert pacing(9, "linear", 0.2, 5) == 1.0
    assert pacing(2, "root", 0.0, 5) == pytest.approx(0.5)
    assert pacing(4, "step", 0.1, 5) == 0.1 and pacing(5, "step", 0.1, 5) == 1.0
    with pytest.raises(ConfigError):
        pacing(1, "cubic", 0.0, 5)


def test_curriculum_sampler_gets_harder_and_never_returns_positives():
    # items 0-4 are blockbusters seen by users 0-19; items 5-29 are each seen by one user
    rows = [(f"u{u}", f"i{i}") for u in range(20) for i in range(5)]
    rows += [(f"u{20 + (i % 20)}", f"i{i}") for i in range(5, 30)] + [
        (f"u{u}", "i5") for u in range(30, 40)
    ]
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]))
    m = ds.matrix("csr")
    blockbuster = np.isin(ds.items.ids, [f"i{i}" for i in range(5)])
    cfg = CurriculumConfig(difficulty="popularity", full_at=5, max_hard=1.0, popularity_alpha=3.0)
    s = CurriculumNegativeSampler(m, cfg)
    rng = np.random.default_rng(0)
    users = np.repeat(ds.users.to_idx(np.array([f"u{u}" for u in range(20, 40)], dtype=object)), 50)
    share = []
    for epoch in (1, 5):
        s.set_epoch(epoch)
        neg = s.sample(users, 2, rng)
        assert not np.asarray(m[np.repeat(users, 2), neg.ravel()]).any()
        share.append(blockbuster[neg].mean())
    assert s.hard_share == 1.0
    assert share[0] < 0.3 and share[1] > 0.9
    # teacher difficulty draws from each user's teacher pool
    top = np.tile(np.arange(5), (ds.n_users, 1))  # (only negatives: rows of users 20-39 below)
    t = CurriculumNegativeSampler(
        m, CurriculumConfig(difficulty="teacher", start=1.0, max_hard=1.0, teacher_pool=5), top
    )
    neg = t.sample(users[:2], 10, rng)
    assert neg.max() < 5
    with pytest.raises(ConfigError, match="teacher"):
        CurriculumNegativeSampler(m, CurriculumConfig(difficulty="teacher"))


def test_curriculum_inside_the_student_model():
    ds = toy_dataset(n_users=30, n_items=20)
    m = Distilled(
        lam=0.0,
        curriculum={"difficulty": "popularity", "full_at": 2},
        embedding_dim=4,
        epochs=3,
        batch_size=128,
    ).fit(ds)
    assert len(m.history_.records) == 3


def test_progressive_unfreezing_with_the_shared_trainer():
    from fusionrec.training.config import TrainConfig
    from fusionrec.training.trainer import Trainer

    class _M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(2, 2)
            self.head = torch.nn.Linear(2, 1)

        def loss(self, batch):
            return (self.head(self.body(batch["x"])) - 1).pow(2).mean()

    class _Model:
        config = TrainConfig(epochs=3, patience=0, lr=0.1)
        module_ = _M()

        def batches(self, dataset, rng):
            yield {"x": torch.ones(4, 2)}

    model = _Model()
    unf = ProgressiveUnfreezing({3: ["body"]}).attach(model.module_)
    before = model.module_.body.weight.detach().clone()
    snaps = []
    unf_then_snap = [unf, lambda e, r: snaps.append(model.module_.body.weight.detach().clone())]
    Trainer(model.config, callbacks=unf_then_snap).fit(model, None, None, seed=0)
    assert torch.equal(snaps[0], before) and torch.equal(snaps[1], before)  # frozen for epochs 1-2
    assert not torch.equal(snaps[2], before)  # trains in epoch 3
    assert unf.frozen == set()
    with pytest.raises(ConfigError, match="no parameter"):
        ProgressiveUnfreezing({2: ["nothing"]}).attach(model.module_)
