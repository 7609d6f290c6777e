"""A planted shilling attack raises the target's rank; removing detected profiles lowers it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.classic.bpr import BPR, _apr_loss
from fusionrec.models.classic.ease import EASE
from fusionrec.models.classic.pop import Pop
from fusionrec.robustness import (
    ShillingAttack,
    detect_fake_profiles,
    inject_profiles,
    precision_recall,
)
from fusionrec.robustness.poisoning import target_hit_rate


def _world(seed: int = 0) -> Dataset:
    """200 users x 12 items each among 60 (Zipf popularity); a rating is the item's quality
    (2-5) plus small noise, as real ratings agree with each other; 'i59' is among the rarest."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, 61) ** 1.1
    p /= p.sum()
    quality = rng.uniform(2, 5, 60)
    rows = []
    for u in range(200):
        for i in rng.choice(60, 12, replace=False, p=p):
            rows.append((f"u{u}", f"i{i}", float(np.clip(np.round(quality[i] + rng.normal(0, 0.3)), 1, 5))))
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "rating"]))


def _mean_rank(model, ds: Dataset, target: str) -> float:
    t = ds.items.index(target)
    users = np.arange(200)
    s = model.score_indices(users)
    return float((s > s[:, [t]]).sum(1).mean())


@pytest.mark.parametrize("kind", ["random", "average", "bandwagon"])
def test_attack_raises_target_and_detector_lowers_it(kind: str) -> None:
    ds = _world()
    clean = _mean_rank(Pop().fit(ds), ds, "i59")
    att = ShillingAttack(kind=kind, targets=("i59",), n_profiles=20, filler_size=6, n_popular=10)
    poisoned, fake = inject_profiles(ds, att, np.random.default_rng(1))
    assert poisoned.n_users == 220 and fake.sum() == 20 and fake[200:].all()
    assert list(poisoned.users.ids[:200]) == list(ds.users.ids)  # real users keep their indices
    t = poisoned.items.index("i59")
    assert poisoned.item_popularity()[t] == ds.item_popularity()[t] + 20  # every profile rates it
    assert (poisoned.rating[poisoned.item_idx == t][-20:] == 5).all()  # at the top of the scale
    attacked = _mean_rank(Pop().fit(poisoned), poisoned, "i59")
    assert attacked < clean - 15, (clean, attacked)
    det = detect_fake_profiles(poisoned)
    prec, rec = precision_recall(det.flagged, fake)
    assert rec >= 0.75 and prec >= 0.85, (prec, rec)
    cleaned = poisoned.with_interactions(~det.flagged[poisoned.user_idx])
    defended = _mean_rank(Pop().fit(cleaned), cleaned, "i59")
    assert defended > attacked + 5, (attacked, defended)


def test_bandwagon_pushes_ease_and_detector_undoes_it() -> None:
    ds = _world()
    clean = _mean_rank(EASE(reg_weight=10.0).fit(ds), ds, "i59")
    att = ShillingAttack(kind="bandwagon", targets=("i59",), n_profiles=40, filler_size=10, n_popular=10)
    poisoned, fake = inject_profiles(ds, att, np.random.default_rng(1))
    attacked = _mean_rank(EASE(reg_weight=10.0).fit(poisoned), poisoned, "i59")
    assert attacked < clean - 5, (clean, attacked)
    det = detect_fake_profiles(poisoned)
    cleaned = poisoned.with_interactions(~det.flagged[poisoned.user_idx])
    assert _mean_rank(EASE(reg_weight=10.0).fit(cleaned), cleaned, "i59") > attacked + 5


def test_hit_rate_and_refusals() -> None:
    ds = _world()
    model = EASE(reg_weight=10.0).fit(ds)
    assert target_hit_rate(model, np.arange(200), ("i59",), k=60) == 1.0  # every unseen item is in a top-60
    assert target_hit_rate(model, np.arange(200), ("i0",), k=10) == 0.0  # i0 is seen by all: no pairs
    with pytest.raises(ConfigError, match="not in the dataset"):
        inject_profiles(ds, ShillingAttack(targets=("nope",)), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="exceeds"):
        inject_profiles(ds, ShillingAttack(targets=("i1",), filler_size=100), np.random.default_rng(0))


def test_precision_recall_known_answer() -> None:
    assert precision_recall(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)) == (0.5, 0.5)
    assert precision_recall(np.zeros(3, bool), np.array([1, 0, 0], bool)) == (0.0, 0.0)


def test_apr_term_first_order() -> None:
    """For a small eps the adversarial loss exceeds BPR by eps * (sum of gradient row norms)."""
    g = torch.Generator().manual_seed(0)
    u = torch.randn(4, 3, generator=g, requires_grad=True)
    p = torch.randn(4, 3, generator=g, requires_grad=True)
    n = torch.randn(4, 2, 3, generator=g, requires_grad=True)
    bpr = -torch.nn.functional.logsigmoid((u * p).sum(-1, keepdim=True) - torch.einsum("bd,bnd->bn", u, n)).mean()
    grads = torch.autograd.grad(bpr, (u, p, n), retain_graph=True)
    eps = 1e-4
    adv = _apr_loss(bpr, u, p, n, eps)
    want = sum(gr.norm(dim=-1).sum() for gr in grads) * eps
    assert float(adv - bpr) == pytest.approx(float(want), rel=1e-2)
    assert float(_apr_loss(bpr, u, p, n, 0.0)) == pytest.approx(float(bpr))


def test_apr_option_trains_and_round_trips(tmp_path) -> None:
    ds = _world()
    m = BPR(embedding_dim=8, epochs=3, adv_eps=0.5, patience=0).fit(ds, seed=0)
    assert any("adv" in c for c in m.history_.as_frame().columns)
    back = type(m).load(m.save(tmp_path / "apr"))
    assert back.config.adv_eps == 0.5
    np.testing.assert_allclose(back.score_indices(np.arange(5)), m.score_indices(np.arange(5)), rtol=1e-6)


def test_study_attack_raises_hit_rate_and_detector_lowers_it() -> None:
    """run_attack end to end on the planted world: a bandwagon push of a rare item lifts its HR@10
    among real users from 0 (EASE: 0 -> 0.207 measured); the detector (with the similarity
    feature) finds every fake and brings it back down (0.011)."""
    from fusionrec.robustness.study import default_attack, run_attack

    ds = _world()
    tg = ("i59",)
    att = default_attack("bandwagon", tg, n_profiles=20, filler_size=6, n_popular=10)
    kw = {"seed": 1, "detector_threshold": 5.0}
    ease = {"reg_weight": 10.0}
    clean = run_attack("ease", ease, ds, ds, (), tg, None, "none", **kw)
    attacked = run_attack("ease", ease, ds, ds, (), tg, att, "none", **kw)
    defended = run_attack("ease", ease, ds, ds, (), tg, att, "detector", **kw)
    assert clean.target_hr10 == 0.0 and attacked.target_hr10 > 0.15, (clean, attacked)
    assert defended.target_hr10 < 0.05, (attacked, defended)
    assert defended.det_recall == 1.0 and attacked.n_fake == 20
    with pytest.raises(ConfigError, match="APR"):
        run_attack("ease", {}, ds, ds, (), tg, att, "apr")
    with pytest.raises(ConfigError, match="other items"):
        run_attack("ease", {}, ds, ds, (), ("i1",), att, "none")
