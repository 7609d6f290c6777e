"""Every route, status code and validation error of the HTTP API (TestClient, tiny EASE)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fusionrec.serving import create_app
from fusionrec.serving.deps import get_model_state
from fusionrec.serving.engine import ModelState


def _rec(client, **body):
    r = client.post("/v1/recommend", json={"k": 3, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_recommend_known_user_matches_model_and_excludes_seen(client, tiny_model):
    out = _rec(client, user_id="u0")
    ids = [x["item_id"] for x in out["items"]]
    assert ids[0] == "c"  # u0 saw a, b; EASE puts c (same taste group) first
    assert not {"a", "b"} & set(ids)
    assert out["fallback"] is False and out["strategy"] == "model"
    assert out["items"][0]["title"] == "Item c"
    exp = tiny_model.recommend(["u0"], k=3)
    assert np.allclose([x["score"] for x in out["items"]], exp["score"].to_numpy(), atol=1e-6)
    assert [x["rank"] for x in out["items"]] == [1, 2, 3]


def test_recommend_can_include_seen(client):
    ids = [x["item_id"] for x in _rec(client, user_id="u0", exclude_seen=False, k=6)["items"]]
    assert {"a", "b", "c"} <= set(ids)


def test_unknown_user_without_history_gets_popular_fallback(client):
    out = _rec(client, user_id="stranger")
    assert out["fallback"] is True and out["strategy"] == "popular"
    # popularity on tiny: a, b, d, e have 3 interactions each, c 1, f 2
    assert {x["item_id"] for x in out["items"]} <= {"a", "b", "d", "e"}
    assert [x["score"] for x in out["items"]] == [3.0, 3.0, 3.0]


def test_unknown_user_with_history_uses_score_histories(client):
    out = _rec(client, user_id="anon", history=["d", "e"], k=1)
    assert out["fallback"] is False and out["strategy"] == "history"
    assert out["items"][0]["item_id"] == "f"


def test_genre_filter(client):
    out = _rec(client, user_id="u0", filters={"genre": "drama"}, k=6)
    assert {x["item_id"] for x in out["items"]} == {"d", "e", "f"}
    out = _rec(client, user_id="u0", filters={"genre": "Action"}, k=6)
    assert [x["item_id"] for x in out["items"]] == ["f"]
    r = client.post("/v1/recommend", json={"user_id": "u0", "filters": {"genre": "Western"}})
    assert r.status_code == 404 and "unknown genre 'Western'" in r.json()["detail"]


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"user_id": "u0", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"user_id": "u0", "k": 5000}, "k: Input should be less than or equal to 1000"),
        ({"user_id": "u0", "k": 500}, "above this service's limit max_k=200"),
        ({"user_id": "u0", "k": "ten"}, "k: Input should be a valid integer"),
        ({"user_id": "u0", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"k": 3}, "user_id: Field required"),
        (
            {"user_id": "u0", "filters": {"year": 1990}},
            "filters.year: Extra inputs are not permitted",
        ),
        ({"user_id": "u0", "history": "abc"}, "history: Input should be a valid list"),
        ({"user_id": "u0", "diversity": 2}, "diversity: Input should be less than or equal to 1"),
    ],
)
def test_recommend_validation_422(client, body, needle):
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_malformed_json_is_422(client):
    r = client.post(
        "/v1/recommend", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422


def test_oversize_body_413(client):
    big = {"user_id": "u0", "history": ["x" * 100] * 1000}
    r = client.post("/v1/recommend", json=big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_oversize_streamed_body_413(client):
    def chunks():
        for _ in range(100):
            yield b"x" * 1024

    r = client.post("/v1/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_similar_items(client):
    r = client.get("/v1/items/a/similar", params={"k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "Item a"
    assert {x["item_id"] for x in body["items"]} <= {"b", "c"}
    assert body["items"][0]["item_id"] == "c"
    assert client.get("/v1/items/zzz/similar").status_code == 404
    assert client.get("/v1/items/a/similar", params={"k": 0}).status_code == 422


def test_history_train_and_unknown(client):
    r = client.get("/v1/users/u1/history")
    assert r.status_code == 200
    body = r.json()
    assert body["known"] is True
    assert [x["item_id"] for x in body["items"]] == ["a", "b", "c"]
    assert all(x["source"] == "train" for x in body["items"])
    assert client.get("/v1/users/nobody/history").status_code == 404


def test_explain_uses_item_item_weights(client, tiny_model):
    r = client.get("/v1/explain", params={"user_id": "u0", "item_id": "c"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "history_scores"
    b = tiny_model.B_
    ia, ib, ic = (tiny_model.items_.index(x) for x in "abc")
    got = {c["item_id"]: c["weight"] for c in body["contributions"]}
    assert got == pytest.approx({"a": float(b[ia, ic]), "b": float(b[ib, ic])}, abs=1e-5)
    assert body["shared_features"] == {"Comedy": 2}
    assert body["score"] == pytest.approx(float(b[ia, ic] + b[ib, ic]), abs=1e-5)
    assert client.get("/v1/explain", params={"user_id": "u0", "item_id": "nope"}).status_code == 404
    assert client.get("/v1/explain", params={"user_id": "ghost", "item_id": "a"}).status_code == 404
    assert client.get("/v1/explain", params={"user_id": "u0"}).status_code == 422


def test_models_users_and_ops(client):
    m = client.get("/v1/models").json()
    assert (
        m["serving"]["name"] == "ease"
        and m["serving"]["n_items"] == 6
        and m["serving"]["version"] == "model"
    )
    assert m["serving"]["params"]["reg_weight"] == 1.0
    u = client.get("/v1/users", params={"limit": 2}).json()
    assert u == {"users": ["u0", "u1"], "total": 6}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    page = client.get("/")
    assert page.status_code == 200 and "<title>fusionrec</title>" in page.text


def test_metrics_exposed(client):
    _rec(client, user_id="u0")
    _rec(client, user_id="u0")  # cache hit
    _rec(client, user_id="stranger")  # fallback
    text = client.get("/metrics").text
    assert (
        'fusionrec_http_requests_total{method="POST",route="/v1/recommend",status="200"} 3.0'
        in text
    )
    assert 'fusionrec_http_request_seconds_count{route="/v1/recommend"} 3.0' in text
    assert 'fusionrec_cache_lookups_total{outcome="hit"} 1.0' in text
    assert "fusionrec_fallback_rate 0.333" in text
    assert 'fusionrec_model_info{model="ease",version="model"} 1.0' in text


def test_cache_hit_flag(client):
    assert _rec(client, user_id="u2")["cached"] is False
    assert _rec(client, user_id="u2")["cached"] is True


def test_auth_401_403(client, keys):
    read, admin, revoked = keys
    bare = {"Authorization": ""}
    r = client.post("/v1/recommend", json={"user_id": "u0"}, headers=bare)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert (
        client.get(
            "/v1/models", headers={"Authorization": "Bearer frk_000000000000_nope"}
        ).status_code
        == 401
    )
    assert client.get("/v1/models", headers={"Authorization": "Bearer garbage"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {read}x"}).status_code == 401
    assert (
        client.get("/v1/models", headers={"Authorization": f"Bearer {revoked}"}).status_code == 403
    )
    assert (
        client.get("/v1/models", headers={"Authorization": "", "X-API-Key": read}).status_code
        == 200
    )
    # every /v1 route is protected
    for method, path in [
        ("GET", "/v1/users/u0/history"),
        ("GET", "/v1/items/a/similar"),
        ("GET", "/v1/explain?user_id=u0&item_id=a"),
        ("POST", "/v1/feedback"),
        ("GET", "/v1/users"),
        ("POST", "/v1/admin/reload"),
    ]:
        assert client.request(method, path, headers=bare).status_code == 401, path
    # admin scope
    assert client.post("/v1/admin/reload").status_code == 403
    r = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {admin}"})
    assert (
        r.status_code == 200 and r.json()["version"] == "model" and r.json()["previous"] == "model"
    )
    # ops routes are open
    assert client.get("/healthz", headers=bare).status_code == 200


def test_dependency_override_injects_model(settings, keys, tiny_model):
    from fusionrec.models.classic.pop import Pop

    app = create_app(settings.model_copy(update={"model_dir": None}))
    pop = Pop().fit(_tiny_dataset(tiny_model))
    state = ModelState.from_model(pop, version="injected")
    app.dependency_overrides[get_model_state] = lambda: state
    with TestClient(app) as c:
        c.headers["X-API-Key"] = keys[0]
        assert c.get("/readyz").json()["version"] == "injected"
        out = c.post("/v1/recommend", json={"user_id": "u0", "k": 2}).json()
        assert out["model_version"] == "injected"
        assert {x["item_id"] for x in out["items"]} == {"d", "e"}  # most popular unseen for u0


def test_not_ready_without_model(settings, keys):
    app = create_app(settings.model_copy(update={"model_dir": None}))
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 503
        assert (
            c.post(
                "/v1/recommend", json={"user_id": "u0"}, headers={"X-API-Key": keys[0]}
            ).status_code
            == 503
        )


def _tiny_dataset(model):
    import pandas as pd

    from fusionrec.data import Dataset

    s = model.seen_.tocoo()
    df = pd.DataFrame({"user_id": model.users_.ids[s.row], "item_id": model.items_.ids[s.col]})
    return Dataset.from_frames(df, name="tiny")
