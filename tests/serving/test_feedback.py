"""Feedback is durable (survives a restart) and changes the user's next answer."""

from __future__ import annotations

import os
import secrets

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fusionrec.serving import create_app
from fusionrec.serving.auth import KeyStore

PG_ENV = "FUSIONREC_TEST_PG_URL"


def _ids(client, **body):
    r = client.post("/v1/recommend", json={"k": 3, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_feedback_excludes_item_from_next_answer(client):
    first = _ids(client, user_id="u0")
    top = first["items"][0]["item_id"]
    assert top == "c"
    assert _ids(client, user_id="u0")["cached"] is True
    r = client.post("/v1/feedback", json={"user_id": "u0", "item_id": "c", "event": "click"})
    assert r.status_code == 201 and r.json()["stored"] is True
    nxt = _ids(client, user_id="u0")
    assert nxt["cached"] is False
    assert "c" not in [x["item_id"] for x in nxt["items"]]
    hist = client.get("/v1/users/u0/history").json()["items"]
    assert hist[-1] == {
        "item_id": "c",
        "title": "Item c",
        "source": "feedback",
        "event": "click",
        "value": None,
        "ts": hist[-1]["ts"],
    }


def test_feedback_reflected_in_scores_for_known_user(client):
    # u0 (taste a-c) clicks d and e: EASE folds them into the history, so f now scores > 0
    before = {x["item_id"]: x["score"] for x in _ids(client, user_id="u0", k=4)["items"]}
    for item in ("d", "e"):
        client.post("/v1/feedback", json={"user_id": "u0", "item_id": item, "event": "view"})
    after = _ids(client, user_id="u0", k=4)
    scores = {x["item_id"]: x["score"] for x in after["items"]}
    assert "f" in scores and scores["f"] > before.get("f", 0.0) + 0.1


def test_new_user_with_events_gets_history_recommendations(client):
    assert _ids(client, user_id="newbie")["fallback"] is True
    client.post("/v1/feedback", json={"user_id": "newbie", "item_id": "d", "event": "purchase"})
    client.post(
        "/v1/feedback", json={"user_id": "newbie", "item_id": "e", "event": "rate", "value": 5}
    )
    out = _ids(client, user_id="newbie", k=1)
    assert out["fallback"] is False and out["strategy"] == "history"
    assert out["items"][0]["item_id"] == "f"
    h = client.get("/v1/users/newbie/history").json()
    assert h["known"] is False and [x["event"] for x in h["items"]] == ["purchase", "rate"]
    ex = client.get("/v1/explain", params={"user_id": "newbie", "item_id": "f"}).json()
    assert {c["item_id"] for c in ex["contributions"]} == {"d", "e"}


def test_feedback_validation(client):
    ok = {"user_id": "u0", "item_id": "a", "event": "click"}
    assert client.post("/v1/feedback", json={**ok, "event": "like"}).status_code == 422
    r = client.post("/v1/feedback", json={**ok, "extra": 1})
    assert r.status_code == 422 and "extra: Extra inputs are not permitted" in r.json()["detail"]
    assert client.post("/v1/feedback", json={**ok, "value": "high"}).status_code == 422
    assert client.post("/v1/feedback", json={**ok, "ts": -5}).status_code == 422
    assert client.post("/v1/feedback", json={"user_id": "u0", "event": "click"}).status_code == 422


@pytest.fixture(params=["sqlite", "postgresql"])
def durable_settings(request, settings):
    """The service settings on SQLite, or on PostgreSQL (``$FUSIONREC_TEST_PG_URL``) in a
    schema of its own that is dropped afterwards."""
    if request.param == "sqlite":
        yield settings
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"{PG_ENV} is not set: start a throwaway cluster with "
            f"`export {PG_ENV}=$(scripts/ci_postgres.sh start /tmp/fr-pg)` to run this on PostgreSQL"
        )
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield settings.model_copy(
            update={"events_url": scoped.render_as_string(hide_password=False)}
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_restart_keeps_every_acknowledged_event(durable_settings):
    settings = durable_settings
    ks = KeyStore(settings.events_url)
    key, _ = ks.create("reader")
    ks.engine.dispose()
    acked = []
    with TestClient(create_app(settings)) as c:
        svc = c.app.state.service
        backend = "sqlite" if settings.events_url.startswith("sqlite") else "postgresql"
        assert svc.engine.dialect.name == backend
        c.headers["X-API-Key"] = key
        for n in range(25):
            r = c.post(
                "/v1/feedback",
                json={
                    "user_id": f"p{n % 4}",
                    "item_id": "abcdef"[n % 6],
                    "event": "view",
                    "ts": 1000.0 + n,
                },
            )
            assert r.status_code == 201
            acked.append((r.json()["id"], f"p{n % 4}", "abcdef"[n % 6], 1000.0 + n))
    # a new app (new process state) on the same database
    with TestClient(create_app(settings)) as c:
        c.headers["X-API-Key"] = key
        got = []
        for u in ("p0", "p1", "p2", "p3"):
            for e in c.get(f"/v1/users/{u}/history").json()["items"]:
                got.append((u, e["item_id"], e["ts"]))
        assert sorted(got) == sorted((u, i, t) for _, u, i, t in acked)
        # and the feedback still shapes answers: p0 viewed a and e (ids 0, 4, 8 ...) -> excluded
        seen = {i for _, u, i, _ in acked if u == "p0"}
        out = c.post("/v1/recommend", json={"user_id": "p0", "k": 6}).json()
        assert not seen & {x["item_id"] for x in out["items"]}


def test_sqlite_is_in_wal_mode(settings):
    import sqlalchemy as sa

    from fusionrec.serving.events import EventStore

    store = EventStore(settings.events_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    store.dispose()
