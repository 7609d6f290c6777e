"""Two-tower: conformance, a cold item found by its features, losses, ml-100k band."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from _torch_model_checks import check_model, one_torch_thread  # noqa: F401

from fusionrec.data import Dataset, split
from fusionrec.models import get_model
from fusionrec.models.neural.two_tower import TwoTower

FAST = dict(embedding_dim=8, feature_dim=4, hidden_dims=(16,), out_dim=8, epochs=3, batch_size=32, device="cpu")


def test_registered():
    assert get_model("two_tower") is TwoTower


def test_conformance(tiny, tmp_path, guard_mutation):
    guard_mutation(tiny)
    check_model(TwoTower, FAST, tiny, tmp_path)


def _groups(seed: int = 0) -> Dataset:
    """Users 0-19 (group A) click A-genre items, users 20-39 B-genre items; a0_new/b0_new are
    in the item table with features but no interactions."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(40):
        g = "a" if u < 20 else "b"
        for i in rng.choice(10, size=5, replace=False):
            rows.append((f"u{u}", f"{g}{i}"))
    ids = [f"{g}{i}" for g in "ab" for i in range(10)] + ["a_new", "b_new"]
    items = pd.DataFrame(
        {
            "item_id": ids,
            "genre": [x[0].upper() for x in ids],
            "tags": [[x[0] + "-tag", "common"] for x in ids],
        }
    )
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), items=items)


@pytest.mark.parametrize("loss", ["in_batch", "sampled"])
def test_cold_item_ranked_by_features(loss):
    ds = _groups()
    assert ds.item_popularity()[ds.items.to_idx(np.array(["a_new", "b_new"]))].sum() == 0
    m = TwoTower(
        embedding_dim=16,
        feature_dim=8,
        hidden_dims=(32,),
        out_dim=16,
        epochs=40,
        batch_size=32,
        lr=5e-3,
        id_dropout=0.5,
        loss=loss,
        num_negatives=8,
        device="cpu",
    ).fit(ds, seed=0)
    s = m.score_indices(np.arange(ds.n_users))
    users = ds.users.to_idx(np.array([f"u{u}" for u in range(40)]))
    a_new, b_new = ds.items.to_idx(np.array(["a_new", "b_new"]))
    group_a = np.arange(40) < 20
    # each group's cold item beats the other group's cold item for (nearly) every user
    wins = np.where(group_a, s[users, a_new] > s[users, b_new], s[users, b_new] > s[users, a_new])
    assert wins.mean() >= 0.95
    # a group-A user has 6 unseen A-genre items (5 warm + a_new): a_new is among the top 6
    rec = m.recommend([f"u{u}" for u in range(20)], k=6)
    assert (rec["item_id"] == "a_new").sum() >= 18
    assert (rec["item_id"] == "b_new").sum() == 0


def test_item_vectors_and_logq(tiny):
    m = TwoTower(**{**FAST, "logq_correction": True}).fit(tiny)
    v = m.item_vectors()
    assert v.shape == (tiny.n_items, 8)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    u = m.user_vectors(np.arange(tiny.n_users))
    np.testing.assert_allclose(u @ v.T, m.score_indices(np.arange(tiny.n_users)), atol=1e-5)
    assert len(m.similar_items(["a"], k=2)) == 2


@pytest.mark.slow
def test_ml100k_rs_band(ml100k):
    from fusionrec.evaluation import Evaluator

    sp_ = split(ml100k, "rs", (0.8, 0.1, 0.1), seed=2020)
    t0 = time.perf_counter()
    m = TwoTower(device="cpu", epochs=20, patience=3).fit(sp_.train, sp_.valid, seed=0)
    fit_s = time.perf_counter() - t0
    r = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate_split(m, sp_)
    print(f"two_tower ml-100k rs: {r.metrics} fit {fit_s:.0f}s")
    assert 0.15 <= r["ndcg@10"] <= 0.4
