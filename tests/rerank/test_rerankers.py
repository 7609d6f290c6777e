"""Known answers for the re-rankers: a planted duplicate is demoted (MMR), a list is calibrated
to the user's genre mix (Steck), FA*IR's prefix minimums and ranking, specs and recommend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fusionrec.data import Dataset
from fusionrec.errors import ConfigError
from fusionrec.rerank import (
    ListReranker,
    calibrated_rerank,
    fair_minimums,
    fair_rerank,
    make_reranker,
    parse_rerank_spec,
    recommend_reranked,
)
from fusionrec.rerank.calibrated import item_genre_distribution

# items 0 and 1 are the same item twice (identical vectors); 2 and 3 differ from both
VECTORS = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_mmr_demotes_a_planted_duplicate() -> None:
    items = np.array([[0, 1, 2, 3]])
    scores = np.array([[1.0, 0.95, 0.9, 0.1]])
    plain = ListReranker("mmr:0", vectors=VECTORS).rerank(np.array([0]), items, scores, 3)[0]
    assert plain.tolist() == [[0, 1, 2]]  # weight 0: the model's order, duplicate at rank 2
    # weight 0.5: rank 2 = argmax 0.5·rel - 0.5·max cos: item 1 -> 0.5·0.944 - 0.5 = -0.03,
    # item 2 -> 0.5·0.889 - 0 = 0.44: the duplicate drops below both distinct items
    div = ListReranker("mmr:0.5", vectors=VECTORS).rerank(np.array([0]), items, scores, 4)[0]
    assert div.tolist() == [[0, 2, 3, 1]]


def test_calibrated_follows_the_users_genre_mix() -> None:
    genres = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 0], [0, 1]]))  # three A items, one B
    gd = item_genre_distribution(genres)
    items = np.array([[0, 1, 2, 3]])
    scores = np.array([[1.0, 0.9, 0.8, 0.7]])
    profile = np.array([[0.5, 0.5]])  # the user watches A and B equally
    assert calibrated_rerank(items, scores, profile, gd, 2, 0.0).tolist() == [[0, 1]]  # relevance only
    # λ = 0.5, second pick: item 1 -> 0.5(1 + 0.667) - 0.5·KL([.5,.5] || [.995,.005]) = 0.83 - 0.98 < 0;
    # item 3 -> 0.5(1 + 0) - 0.5·0 = 0.5: the B item comes second
    assert calibrated_rerank(items, scores, profile, gd, 2, 0.5).tolist() == [[0, 3]]


def test_fair_minimums_are_binomial_quantiles() -> None:
    # F(0; 4, .5) = .0625 < .1 <= F(1; 4, .5) = .3125 -> m(4) = 1; m(7) = 2 (F(1; 7, .5) = .0625)
    assert fair_minimums(7, 0.5, 0.1).tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert fair_minimums(3, 0.0).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="p must be"):
        fair_minimums(3, 1.5)


def test_fair_rerank_inserts_protected_items_where_a_prefix_needs_them() -> None:
    # six unprotected items (0..5) outscore three protected ones (6..8)
    items = np.arange(9)[None, :]
    scores = np.linspace(1.0, 0.1, 9)[None, :]
    protected = np.r_[np.zeros(6, bool), np.ones(3, bool)]
    got = fair_rerank(items, scores, protected, 7, 0.5)
    assert items[0, got[0]].tolist() == [0, 1, 2, 6, 3, 4, 7]
    assert fair_rerank(items, scores, protected, 7, 0.0).tolist() == [list(range(7))]


def test_rerankers_skip_non_candidates_and_pad() -> None:
    items = np.array([[0, 2, 1, 3]])
    scores = np.array([[1.0, 0.5, -np.inf, -np.inf]])  # only two candidates left
    for r in (ListReranker("mmr:0.3", vectors=VECTORS), ListReranker("fair:0.5", protected=np.array([0, 0, 1, 1], bool))):
        it, sc = r.rerank(np.array([0]), items, scores, 3)
        assert it.tolist() == [[0, 2, -1]]
        assert np.isneginf(sc[0, 2])


def test_spec_parsing() -> None:
    s = parse_rerank_spec("MMR:0.3")
    assert (s.method, s.weight, s.pool, s.text) == ("mmr", 0.3, 100, "mmr:0.3")
    assert parse_rerank_spec("fair:0.5:50").pool == 50
    for bad, msg in (("mmr", "METHOD:WEIGHT"), ("shuffle:0.1", "unknown re-ranker"), ("mmr:x", "not a number"), ("mmr:2", r"\[0, 1\]"), ("mmr:0.1:0", "pool")):
        with pytest.raises(ConfigError, match=msg):
            parse_rerank_spec(bad)


def _toy() -> Dataset:
    rows = [("u0", "i0"), ("u0", "i1"), ("u1", "i0"), ("u1", "i2"), ("u2", "i0"), ("u2", "i1"), ("u3", "i3"), ("u3", "i4")]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(5)], "genres": [["A"], ["A"], ["B"], ["B"], ["C"]]})
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), items=items, item_feature_types={"genres": "token_seq"}, name="toy")


def test_make_reranker_and_recommend_reranked() -> None:
    from fusionrec.models.registry import get_model

    ds = _toy()
    model = get_model("pop")().fit(ds)
    # pop order for u3 (seen i3, i4): i0 (3) > i1 (2) > i2 (1); head = top 20% of 5 items = {i0}
    plain = model.recommend(["u3"], 2)
    assert plain["item_id"].tolist() == ["i0", "i1"]
    fair = make_reranker("fair:1.0", ds, model)  # p = 1: every prefix must hold tail items
    out = recommend_reranked(model, ["u3", "stranger"], 2, fair)
    mine = out[out.user_id == "u3"]
    assert mine["item_id"].tolist() == ["i1", "i2"] and mine["rank"].tolist() == [1, 2]
    assert out[out.user_id == "stranger"]["fallback"].all()
    cal = make_reranker("calibrated:0.5", ds, model)
    assert cal.genre_dist.shape == (5, 3)
    mmr = make_reranker("mmr:0.3", ds, model)
    assert mmr.vectors.shape == (5, 3)  # genre one-hots
