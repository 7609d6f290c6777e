"""DeepFM and evaluate_ctr: conformance, a planted feature->click rule, targets, ml-100k band."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch
from _torch_model_checks import check_model, one_torch_thread  # noqa: F401

from fusionrec.data import Dataset, split
from fusionrec.errors import ConfigError
from fusionrec.evaluation import auc
from fusionrec.evaluation.ctr import ctr_examples, evaluate_ctr
from fusionrec.models import get_model
from fusionrec.models.neural.deepfm import DeepFM

FAST = dict(embedding_dim=4, hidden_dims=(8,), epochs=3, batch_size=128, lr=0.01, device="cpu")


def test_registered():
    assert get_model("deepfm") is DeepFM


def test_conformance(tiny, tmp_path, guard_mutation):
    guard_mutation(tiny)
    check_model(DeepFM, FAST, tiny, tmp_path)


def test_score_all_equals_pairwise_logits(tiny):
    m = DeepFM(**{**FAST, "hidden_dims": (8, 4)}).fit(tiny)
    u, i = np.meshgrid(np.arange(tiny.n_users), np.arange(tiny.n_items), indexing="ij")
    p = m.predict_indices(u.ravel(), i.ravel()).reshape(u.shape)
    np.testing.assert_allclose(
        torch.sigmoid(torch.as_tensor(m.score_indices(np.arange(tiny.n_users)))).numpy(),
        p,
        atol=1e-5,
    )
    m0 = DeepFM(**{**FAST, "hidden_dims": ()}).fit(tiny)  # FM + linear "deep" part
    p0 = m0.predict_indices(u.ravel(), i.ravel()).reshape(u.shape)
    np.testing.assert_allclose(
        torch.sigmoid(torch.as_tensor(m0.score_indices(np.arange(tiny.n_users)))).numpy(),
        p0,
        atol=1e-5,
    )


def _planted(seed: int = 0) -> Dataset:
    """Users with taste t click only items of category t (3 tastes/categories)."""
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, 3, size=60)
    taste = rng.integers(0, 3, size=90)
    rows = []
    for u in range(90):
        pool = np.flatnonzero(cat == taste[u])
        for i in rng.choice(pool, size=6, replace=False):
            rows.append((f"u{u}", f"i{i}"))
    users = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(90)], "taste": [f"t{t}" for t in taste]}
    )
    items = pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(60)], "category": [f"t{c}" for c in cat]}
    )
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), users, items)


def test_planted_feature_rule_auc():
    ds = _planted()
    m = DeepFM(
        embedding_dim=8, hidden_dims=(16,), epochs=30, batch_size=256, lr=1e-2, device="cpu"
    ).fit(ds, seed=0)
    taste = ds.user_features["taste"].to_numpy()
    cat = ds.item_features["category"].to_numpy()
    u, i = np.meshgrid(np.arange(ds.n_users), np.arange(ds.n_items), indexing="ij")
    unseen = ~ds.matrix("csr").toarray().astype(bool)
    labels = (taste[u] == cat[i])[unseen]
    p = m.predict_proba_indices(u[unseen], i[unseen])
    assert auc(labels, p) >= 0.95
    res = evaluate_ctr(m, ds, ds, n_neg=2, seed=0)  # train positives vs sampled unseen items
    assert res["auc"] >= 0.8 and np.isfinite(res["log_loss"]) and res["n_neg"] == 2 * res["n_pos"]


def test_rating_targets():
    df = pd.DataFrame(
        {"user_id": list("aabbcc"), "item_id": list("xyxyxy"), "rating": [5, 1, 5, 1, 4, 2.0]}
    )
    ds = Dataset.from_frames(df)
    clf = DeepFM(**{**FAST, "target": "rating", "epochs": 60, "lr": 0.05}).fit(ds)
    p = clf.predict_proba_indices(np.array([0, 0]), ds.items.to_idx(np.array(["x", "y"])))
    assert p[0] > 0.5 > p[1]
    reg = DeepFM(
        **{**FAST, "target": "rating", "rating_threshold": None, "epochs": 150, "lr": 0.05}
    ).fit(ds)
    r = reg.predict_indices(np.array([0, 0]), ds.items.to_idx(np.array(["x", "y"])))
    assert r[0] > 3.5 and r[1] < 2.5
    with pytest.raises(ConfigError, match="probabilities"):
        reg.predict_proba_indices(np.array([0]), np.array([0]))
    with pytest.raises(ConfigError, match="ratings"):
        DeepFM(**{**FAST, "target": "rating"}).fit(Dataset.from_frames(df.drop(columns="rating")))


class _Oracle:
    """Scores 1 for the user's test items, 0 elsewhere (no probabilities)."""

    def __init__(self, test: Dataset) -> None:
        self.m = test.matrix("csr").toarray()

    def score_indices(self, user_idx, item_idx=None):
        return self.m[np.asarray(user_idx)].astype(np.float32)


def test_ctr_examples_and_oracle(tiny):
    tr = tiny.with_interactions(np.arange(tiny.n_interactions) % 2 == 0)
    te = tiny.with_interactions(np.arange(tiny.n_interactions) % 2 == 1)
    u, i, y = ctr_examples(te, tr, n_neg=2, seed=1)
    assert y.sum() == te.n_interactions and (y == 0).sum() == 2 * te.n_interactions
    known = (tr.matrix("csr") + te.matrix("csr")).toarray() > 0
    assert not known[u[y == 0], i[y == 0]].any()  # negatives never seen in train or test
    res = evaluate_ctr(_Oracle(te), te, tr, n_neg=2, seed=1)
    assert res["auc"] == 1.0 and res["gauc"] == 1.0 and np.isnan(res["log_loss"])
    with pytest.raises(ValueError, match="n_neg"):
        evaluate_ctr(_Oracle(te), te, tr, n_neg=0)


@pytest.mark.slow
def test_ml100k_rs_band(ml100k):
    from fusionrec.evaluation import Evaluator

    sp_ = split(ml100k, "rs", (0.8, 0.1, 0.1), seed=2020)
    t0 = time.perf_counter()
    m = DeepFM(device="cpu", epochs=10, patience=2).fit(sp_.train, sp_.valid, seed=0)
    fit_s = time.perf_counter() - t0
    r = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate_split(m, sp_)
    ctr = evaluate_ctr(m, sp_.test, sp_.train, n_neg=1, seed=0, exclude=(sp_.valid,))
    print(f"deepfm ml-100k rs: {r.metrics} {ctr} fit {fit_s:.0f}s")
    assert 0.1 <= r["ndcg@10"] <= 0.4
    assert ctr["auc"] >= 0.85
