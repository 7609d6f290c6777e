"""The library and the service give the same list for the same request (issue 12 item 4):
seen items, candidate/genre filters, unknown users, feedback-only users, diversity, the
content fallback, and the ANN path."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fusionrec.models.base import ModelConfig, Recommender
from fusionrec.models.item_filters import genre_filter
from fusionrec.models.recommend import recommend_batch
from fusionrec.serving import create_app
from fusionrec.serving.deps import get_model_state
from fusionrec.serving.engine import ModelState


class _Vectors(Recommender):
    """User·item scores of fixed 2-d item vectors, no history scoring (as in
    tests/models/test_recommend_path.py, whose hand-computed content answer this reuses)."""

    name = "test_vectors"
    Config = ModelConfig
    V = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 1], [0.6, 0.4]], np.float32)

    def _fit(self, dataset, valid, seed):
        self.U_ = np.ones((dataset.n_users, 2), np.float32)

    def score_indices(self, user_idx, item_idx=None):
        v = self.V if item_idx is None else self.V[np.asarray(item_idx)]
        return (self.U_[np.asarray(user_idx)] @ v.T).astype(np.float32)

    def item_vectors(self):
        return self.V

    def _get_state(self):
        return {"U": self.U_}

    def _set_state(self, state):
        self.U_ = state["U"]


def _http(client, **body) -> tuple[list[str], list[float], bool, str]:
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    return (
        [x["item_id"] for x in out["items"]],
        [x["score"] for x in out["items"]],
        out["fallback"],
        out["strategy"],
    )


def _lib(model, user, k=3, **kw) -> tuple[list[str], list[float], bool]:
    df = model.recommend([user], k=k, **kw)
    return (
        df["item_id"].tolist(),
        df["score"].tolist(),
        bool(df["fallback"].all()) if len(df) else False,
    )


@pytest.mark.parametrize(
    "body, kwargs",
    [
        ({"user_id": "u0"}, {}),
        ({"user_id": "u4", "k": 6, "exclude_seen": False}, {"exclude_seen": False}),
        ({"user_id": "u0", "k": 6, "diversity": 0.5}, {"diversity": 0.5}),
        ({"user_id": "stranger"}, {}),
        ({"user_id": "anon", "history": ["d", "zzz"]}, {"histories": [["d", "zzz"]]}),
        ({"user_id": "u1", "history": ["e"]}, {"histories": [["e"]]}),
    ],
    ids=[
        "known",
        "include-seen",
        "diversity",
        "unknown",
        "anonymous-history",
        "known-plus-history",
    ],
)
def test_same_list_as_the_library(client, tiny_model, body, kwargs):
    items, scores, fallback, _ = _http(client, **{"k": 3, **body})
    exp_items, exp_scores, exp_fallback = _lib(
        tiny_model, body["user_id"], body.get("k", 3), **kwargs
    )
    assert items == exp_items
    np.testing.assert_allclose(scores, exp_scores, rtol=1e-6)
    assert fallback == exp_fallback


def test_genre_filter_same_as_library(client, tiny_model, tiny_with_genres):
    for genre in ("Drama", "action", "comedy"):
        items, scores, _, _ = _http(client, user_id="u0", k=6, filters={"genre": genre})
        mask = genre_filter(tiny_model, tiny_with_genres, genre)
        exp, exp_scores, _ = _lib(tiny_model, "u0", 6, item_filter=mask)
        assert items == exp and scores == pytest.approx(exp_scores)


def test_feedback_only_and_known_user_with_feedback(client, tiny_model):
    for user, item in (("newbie", "d"), ("newbie", "e"), ("u0", "c")):
        r = client.post("/v1/feedback", json={"user_id": user, "item_id": item, "event": "click"})
        assert r.status_code == 201, r.text
    items, _, fallback, strategy = _http(client, user_id="newbie", k=3)
    assert (items, fallback, strategy) == (
        _lib(tiny_model, "newbie", histories=[["d", "e"]])[0],
        False,
        "history",
    )
    assert items[0] == "f"  # the newbie's taste group
    items, _, _, strategy = _http(client, user_id="u0", k=3)
    assert items == _lib(tiny_model, "u0", histories=[["c"]])[0] and "c" not in items


def test_content_fallback_same_as_library(settings, keys, tiny):
    """A model without history scoring answers an anonymous history by item-vector cosine,
    offline from Python and through the service alike."""
    m = _Vectors().fit(tiny)
    app = create_app(settings.model_copy(update={"model_dir": None}))
    app.dependency_overrides[get_model_state] = lambda: ModelState.from_model(m)
    with TestClient(app) as c:
        c.headers["X-API-Key"] = keys[0]
        items, scores, fallback, strategy = _http(c, user_id="anon", k=5, history=["a"])
    assert (fallback, strategy) == (True, "content")
    exp, exp_scores, exp_fb = _lib(m, "anon", 5, histories=[["a"]])
    assert items == exp == ["b", "f", "e", "d", "c"] and exp_fb
    np.testing.assert_allclose(scores, exp_scores, rtol=1e-6)


def test_ann_path_is_the_library_with_a_retriever(tmp_path):
    from fusionrec.models.classic.static_embedding import StaticEmbedding

    m = StaticEmbedding.synthetic(n_users=30, n_items=3000, dim=8, n_clusters=10, seed=3)
    state = ModelState.load(m.save(tmp_path / "emb"), ann_threshold=1000, ann_nprobe=64)
    assert state.ann is not None
    from fusionrec.serving.engine import recommend

    for u in ("u1", "u7"):
        got = recommend(state, u, 10, event_items=["i5"])
        (lib,) = recommend_batch(
            state.model, [u], 10, histories=[["i5"]], retriever=state.retriever
        )
        assert got.strategy == lib.strategy == "ann"
        assert got.items.tolist() == lib.items.tolist()
