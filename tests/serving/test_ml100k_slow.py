"""Integration on real MovieLens-100k (slow): titles, genre filter, feedback and retrain."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fusionrec.models.classic.ease import EASE
from fusionrec.serving import create_app
from fusionrec.serving.auth import KeyStore
from fusionrec.serving.catalog import write_catalog
from fusionrec.serving.events import EventStore
from fusionrec.serving.retrain import fold_events
from fusionrec.serving.settings import ServeSettings

pytestmark = pytest.mark.slow


def test_ml100k_service_end_to_end(tmp_path, ml100k):
    model = EASE().fit(ml100k)
    d = model.save(tmp_path / "v1")
    write_catalog(ml100k, d)
    url = f"sqlite:///{tmp_path / 's.db'}"
    key, _ = KeyStore(url).create("t")
    with TestClient(create_app(ServeSettings(model_dir=d, events_url=url))) as c:
        c.headers["X-API-Key"] = key
        out = c.post("/v1/recommend", json={"user_id": "1", "k": 10}).json()
        assert len(out["items"]) == 10 and all(x["title"] for x in out["items"])
        seen = set(ml100k.history("1").tolist())
        assert not seen & {x["item_id"] for x in out["items"]}
        hor = c.post(
            "/v1/recommend", json={"user_id": "1", "k": 5, "filters": {"genre": "Horror"}}
        ).json()
        cat = {
            r.item_id: list(r.genres)
            for r in __import__("pandas").read_parquet(d / "catalog.parquet").itertuples()
        }
        assert all("Horror" in cat[x["item_id"]] for x in hor["items"])
        top = out["items"][0]["item_id"]
        ex = c.get("/v1/explain", params={"user_id": "1", "item_id": top}).json()
        assert ex["method"] == "history_scores" and len(ex["contributions"]) == 5
        assert (
            c.post(
                "/v1/feedback", json={"user_id": "1", "item_id": top, "event": "purchase"}
            ).status_code
            == 201
        )
        nxt = c.post("/v1/recommend", json={"user_id": "1", "k": 10}).json()
        assert top not in {x["item_id"] for x in nxt["items"]}
    events = EventStore(url).frame()
    folded = fold_events(ml100k, events)
    assert folded.n_interactions == ml100k.n_interactions + 1
