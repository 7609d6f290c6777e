"""``GET /v1/explain/detail``: the explanation report through the service (tiny EASE)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")


@pytest.fixture
def client(tmp_path, tiny):
    from fastapi.testclient import TestClient

    from fusionrec.models.classic.ease import EASE
    from fusionrec.serving import create_app
    from fusionrec.serving.auth import KeyStore
    from fusionrec.serving.settings import ServeSettings

    d = EASE(reg_weight=1.0).fit(tiny).save(tmp_path / "model")
    settings = ServeSettings(model_dir=d, events_url=f"sqlite:///{tmp_path / 'serve.db'}", gc_freeze=False)
    ks = KeyStore(settings.events_url)
    key, _ = ks.create("reader")
    ks.engine.dispose()
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


def test_explain_detail_known_user(client) -> None:
    r = client.get("/v1/explain/detail", params={"user_id": "u0", "item_id": "c", "top": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    # u0 saw a, b (taste group a-c): both raise c's EASE score, so both contribute positively
    items = body["contributions"]["items"]
    assert body["contributions"]["method"] == "leave_one_out"
    assert {x["item_id"] for x in items} == {"a", "b"} and all(x["weight"] > 0 for x in items)
    assert body["item"] == {"item_id": "c", "title": "Item c"}
    assert set(body["skipped"]) == {"attention", "kg_paths", "features"}


def test_explain_detail_errors(client) -> None:
    assert client.get("/v1/explain/detail", params={"user_id": "u0", "item_id": "zzz"}).status_code == 404
    assert client.get("/v1/explain/detail", params={"user_id": "nobody", "item_id": "c"}).status_code == 404
    assert client.get("/v1/explain/detail", params={"user_id": "u0", "item_id": "c", "top": 0}).status_code == 422
