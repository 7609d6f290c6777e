"""Multi-task model: shared-bottom and MMoE, fixed and uncertainty weights, per-task metrics."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.splits import split
from fusionrec.errors import ConfigError
from fusionrec.evaluation.evaluator import Evaluator
from fusionrec.models.composite.multitask import MultiTask, _multi_hot, rating_rmse
from fusionrec.testing import check_recommender, checkerboard, toy_dataset

FAST = {
    "epochs": 25,
    "batch_size": 256,
    "lr": 0.03,
    "patience": 0,
    "embedding_dim": 8,
    "hidden_dims": (16,),
    "tower_dim": 8,
}


@pytest.mark.parametrize("architecture", ["mmoe", "shared_bottom"])
def test_planted_ratings_and_ranking_are_learned(architecture):
    ds = toy_dataset(n_users=40, n_items=20, seed=4)
    m = MultiTask(
        tasks=("ranking", "rating", "genre"), genre_field="genre", architecture=architecture, **FAST
    ).fit(ds, seed=0)
    # ratings: in-group 4-5, cross-group 1-2 -> predictions separate the two
    users, items = ds.user_idx, ds.item_idx
    in_group = (users >= 20) == (items >= 10)
    ug = ds.users.to_idx(ds.users.ids) >= 0
    assert ug.all()
    pred = m.predict_rating_indices(users, items)
    assert pred[in_group].mean() > pred[~in_group].mean() + 1.5
    assert rating_rmse(m, ds) < 1.0
    # ranking: each user's top unseen item is from its own group most of the time
    top, _ = m.recommend_indices(np.arange(ds.n_users), k=1)
    u_group = np.array([int(uid[1:]) >= 20 for uid in ds.users.ids])
    i_group = np.array([int(iid[1:]) >= 10 for iid in ds.items.ids])
    assert (i_group[top[:, 0]] == u_group).mean() >= 0.8
    for rec in m.history_.records:
        assert {"loss_ranking", "loss_rating", "loss_genre"} <= set(rec)


def test_uncertainty_weighting_learns_log_variances():
    ds = toy_dataset(n_users=30, n_items=20, seed=5)
    m = MultiTask(weighting="uncertainty", **FAST).fit(ds, seed=0)
    lv = m.module_.log_vars.detach().numpy()
    assert lv.shape == (2,) and np.abs(lv).max() > 1e-3


def test_conformance_and_ranking_only():
    check_recommender(
        MultiTask,
        {
            "epochs": 2,
            "batch_size": 128,
            "embedding_dim": 4,
            "hidden_dims": (8,),
            "tower_dim": 4,
            "n_experts": 2,
        },
    )
    ds, target = checkerboard()
    m = MultiTask(tasks=("ranking",), **{**FAST, "epochs": 60, "lr": 0.01}).fit(ds, seed=0)
    hits = np.mean([m.recommend([u], k=1)["item_id"].iloc[0] == t for u, t in target.items()])
    assert hits >= 0.75


def test_rating_only_model_ranks_by_predicted_rating_and_errors():
    ds = toy_dataset(n_users=30, n_items=20, seed=6)
    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=0)
    m = MultiTask(tasks=("rating",), **{**FAST, "epochs": 3}).fit(sp.train, seed=0)
    assert np.isfinite(Evaluator(ks=(5,)).evaluate_split(m, sp)["ndcg@5"])
    with pytest.raises(ConfigError, match="not trained for the 'rating'"):
        MultiTask(tasks=("ranking",), epochs=1).fit(ds).predict_rating_indices([0], [0])
    no_rating = ds.with_interactions(np.arange(ds.n_interactions))
    with pytest.raises(ConfigError, match="genre"):
        MultiTask(tasks=("ranking", "genre"), genre_field="nope").fit(no_rating)
    with pytest.raises(ConfigError, match="task_weights"):
        MultiTask(task_weights=(1.0,))


def test_multi_hot():
    import pandas as pd

    out, vocab = _multi_hot(pd.Series([["a", "b"], ["b"], [], "c"], dtype=object))
    assert vocab == ["a", "b", "c"]
    np.testing.assert_array_equal(out, [[1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]])
