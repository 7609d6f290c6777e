"""The request hot path's shortcuts keep the service's behaviour: key-check cache, feedback-events
cache, the serialised recommend answer, and similar items through the ANN index."""

from __future__ import annotations

import gc
import time

import numpy as np
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fusionrec.models.classic.static_embedding import StaticEmbedding
from fusionrec.serving import create_app
from fusionrec.serving.auth import KeyStore
from fusionrec.serving.deps import get_model_state
from fusionrec.serving.engine import ModelState, similar
from fusionrec.serving.events import EventStore
from fusionrec.serving.schemas import RecommendResponse
from fusionrec.serving.service import Service


def _count_queries(engine: sa.Engine) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _q(conn, cursor, statement, *a) -> None:
        seen.append(statement)

    return seen


def test_key_cache_is_keyed_by_id_and_still_checks_the_secret(settings):
    svc = Service(settings.model_copy(update={"key_cache_s": 60.0}))
    key, info = svc.keys.create("k")
    queries = _count_queries(svc.engine)
    assert svc.check_key(key).status == "ok"
    n = len(queries)
    assert n >= 1
    assert svc.check_key(key).status == "ok" and len(queries) == n  # from memory
    assert svc.cached_key(key) is not None
    # same key id, wrong secret: not answered from memory, and refused
    forged = key[:-3] + ("xyz" if not key.endswith("xyz") else "abc")
    assert svc.cached_key(forged) is None
    assert svc.check_key(forged).status == "unknown"
    # a wrong secret must not evict the real key's remembered check (issue 17 item 8)
    n = len(queries)
    assert svc.cached_key(key) is not None
    assert svc.check_key(key).status == "ok" and len(queries) == n
    # revoked through the service: refused at once, despite the 60 s cache
    svc.revoke_key(info.key_id)
    assert svc.check_key(key).status == "revoked"
    svc.close()


def test_key_revoked_by_another_process_stops_within_key_cache_s(settings):
    svc = Service(settings.model_copy(update={"key_cache_s": 0.3}))
    key, info = svc.keys.create("k")
    assert svc.check_key(key).status == "ok"
    other = KeyStore(settings.events_url)  # e.g. `fusionrec keys revoke` in another process
    other.revoke(info.key_id)
    other.engine.dispose()
    assert svc.check_key(key).status == "ok"  # still remembered
    time.sleep(0.35)
    assert svc.check_key(key).status == "revoked"
    svc.close()


def test_events_cache_answers_without_queries_and_follows_feedback(settings):
    svc = Service(settings)
    svc.add_event("old", "a", "view", None, 1.0)
    svc.reload()  # loads the model and the set of users with events
    queries = _count_queries(svc.engine)
    assert svc.event_items("nobody") == [] and queries == []  # no events: no query
    assert svc.event_items("old") == ["a"] and len(queries) == 1
    assert svc.event_items("old") == ["a"] and len(queries) == 1  # now from memory
    svc.add_event("old", "b", "click", None, 2.0)
    svc.add_event("new", "c", "click", None, 3.0)
    assert svc.event_items("old") == ["a", "b"]
    assert svc.event_items("new") == ["c"]
    # an event written by another process reaches a user held in memory on reload
    other = EventStore(settings.events_url)
    other.add("old", "d", "view", ts=4.0)
    other.add("elsewhere", "e", "view", ts=5.0)
    other.dispose()
    assert svc.event_items("old") == ["a", "b"] and svc.event_items("elsewhere") == []
    svc.reload()
    assert svc.event_items("old") == ["a", "b", "d"] and svc.event_items("elsewhere") == ["e"]
    svc.close()


def test_events_cache_off_reads_database_every_time(settings):
    svc = Service(settings.model_copy(update={"events_cache_size": 0}))
    other = EventStore(settings.events_url)
    assert svc.event_items("x") == []
    other.add("x", "a", "view")
    assert svc.event_items("x") == ["a"]
    other.dispose()
    svc.close()


def test_recommend_response_body_is_the_schema(client):
    body = client.post("/v1/recommend", json={"user_id": "u0", "k": 2}).json()
    assert list(body) == [
        "user_id",
        "items",
        "fallback",
        "strategy",
        "model_version",
        "cached",
        "policy",
    ]
    assert list(body["items"][0]) == ["item_id", "rank", "score", "title", "propensity"]
    assert body["items"][0]["title"] == "Item c" and body["items"][0]["rank"] == 1
    assert isinstance(body["items"][0]["score"], float) and body["cached"] is False
    # the hand-built body is exactly what the declared response model would produce
    assert RecommendResponse.model_validate(body).model_dump(mode="json") == body
    again = client.post("/v1/recommend", json={"user_id": "u0", "k": 2}).json()
    assert again == {**body, "cached": True}


def test_similar_items_through_ann_match_exact_cosine(tmp_path, settings, keys):
    m = StaticEmbedding.synthetic(n_users=20, n_items=4000, dim=16, n_clusters=30, seed=2)
    m.V_ = m.V_ * np.linspace(0.5, 2.0, m.n_items, dtype=np.float32)[:, None]  # unequal norms
    d = m.save(tmp_path / "emb")
    # visiting every IVF list makes the candidate search exhaustive: same answer as exact
    full = ModelState.load(d, ann_threshold=1000, ann_nprobe=10_000, save_index=False)
    assert full.ann is not None and full.ann.kind == "ivf"
    # cosine candidates come from an inner-product search: ask for enough of them
    for q in (0, 17, 3999):
        idx, sc, how = similar(full, q, 10, ann_candidates=4000)
        exp = m.similar_items([m.items_.ids[q]], 10)
        assert how == "ann"
        assert [str(m.items_.ids[i]) for i in idx] == exp["similar_item_id"].tolist()
        assert np.allclose(sc, exp["score"].to_numpy(), atol=1e-5)
        assert q not in idx.tolist()
    # the default pipeline (nprobe 32, 200 candidates) finds most of the exact neighbours
    approx = ModelState.load(d, ann_threshold=1000, ann_nprobe=32, save_index=False)
    hits = 0
    for q in range(0, 4000, 200):
        idx, _, _ = similar(approx, q, 10)
        exp = set(m.similar_items([m.items_.ids[q]], 10)["similar_item_id"])
        hits += len(exp & {str(m.items_.ids[i]) for i in idx})
    assert hits / 200 >= 0.8
    # below the threshold: no index, the model's exact answer
    small = ModelState.load(d, ann_threshold=10_000, save_index=False)
    idx, sc, how = similar(small, 17, 5)
    assert how == "exact" and small.ann is None
    exp = m.similar_items([m.items_.ids[17]], 5)
    assert [str(m.items_.ids[i]) for i in idx] == exp["similar_item_id"].tolist()
    # through HTTP
    app = create_app(settings.model_copy(update={"model_dir": None}))
    app.dependency_overrides[get_model_state] = lambda: full
    with TestClient(app) as c:
        c.headers["X-API-Key"] = keys[0]
        r = c.get("/v1/items/i17/similar", params={"k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["strategy"] == "ann" and [x["rank"] for x in body["items"]] == [1, 2, 3]
        idx, sc, _ = similar(full, 17, 3, settings.ann_candidates)
        assert [x["item_id"] for x in body["items"]] == [str(m.items_.ids[i]) for i in idx]
        v = m.V_ / np.linalg.norm(m.V_, axis=1, keepdims=True)
        assert np.allclose([x["score"] for x in body["items"]], v[idx] @ v[17], atol=1e-5)
        assert c.get("/v1/items/nope/similar").status_code == 404


def test_gc_freeze_after_load_and_unfreeze_on_close(settings):
    svc = Service(settings.model_copy(update={"gc_freeze": True}))
    try:
        svc.reload()
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        svc.reload()  # unfreeze, collect, freeze again: no pile-up of frozen garbage
        assert abs(gc.get_freeze_count() - frozen) < frozen // 2
    finally:
        svc.close()
    assert gc.get_freeze_count() == 0
