"""Zero-downtime reload: admin route and registry folder, under concurrent requests."""

from __future__ import annotations

import json
import shutil
import threading
import time

from fastapi.testclient import TestClient

from fusionrec.models.classic.pop import Pop
from fusionrec.serving import create_app
from fusionrec.serving.engine import latest_version


def test_reload_under_concurrent_requests(tmp_path, settings, keys, model_dir, tiny_with_genres):
    reg = tmp_path / "registry"
    shutil.copytree(model_dir, reg / "v1")
    s = settings.model_copy(update={"model_dir": None, "registry": reg, "registry_poll_s": 3600})
    errors: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()
    with TestClient(create_app(s)) as c:
        c.headers["X-API-Key"] = keys[0]
        assert c.get("/v1/models").json()["serving"]["version"] == "v1"

        def hammer(n: int) -> None:
            while not stop.is_set():
                r = c.post("/v1/recommend", json={"user_id": f"u{n}", "k": 2})
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text}")
                else:
                    versions.add(r.json()["model_version"])

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.2)
            Pop().fit(tiny_with_genres).save(reg / "v2")
            r = c.post("/v1/admin/reload", headers={"X-API-Key": keys[1]})
            assert r.status_code == 200, r.text
            assert r.json() == {"version": "v2", "previous": "v1", "seconds": r.json()["seconds"]}
            time.sleep(0.2)
            Pop().fit(tiny_with_genres).save(reg / "v10")  # natural sort: v10 > v2
            assert c.app.state.service.poll_registry() is True
            time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == []
        assert {"v1", "v2", "v10"} <= versions | {c.get("/v1/models").json()["serving"]["version"]}
        m = c.get("/v1/models").json()
        assert m["serving"]["name"] == "pop" and m["serving"]["version"] == "v10"
        assert m["available_versions"] == ["v1", "v2", "v10"]
        assert c.app.state.service.poll_registry() is False


def test_registry_is_polled_in_background(tmp_path, settings, keys, model_dir, tiny_with_genres):
    reg = tmp_path / "registry"
    shutil.copytree(model_dir, reg / "1")
    s = settings.model_copy(update={"model_dir": None, "registry": reg, "registry_poll_s": 0.05})
    with TestClient(create_app(s)) as c:
        c.headers["X-API-Key"] = keys[0]
        Pop().fit(tiny_with_genres).save(reg / "2")
        deadline = time.time() + 10
        while time.time() < deadline and c.get("/v1/models").json()["serving"]["version"] != "2":
            time.sleep(0.05)
        assert c.get("/v1/models").json()["serving"]["version"] == "2"
        assert 'fusionrec_model_info{model="pop",version="2"} 1.0' in c.get("/metrics").text


def test_failed_reload_keeps_old_model(tmp_path, settings, keys, model_dir):
    reg = tmp_path / "registry"
    shutil.copytree(model_dir, reg / "v1")
    s = settings.model_copy(update={"model_dir": None, "registry": reg})
    with TestClient(create_app(s)) as c:
        bad = reg / "v2"
        shutil.copytree(model_dir, bad)
        meta = json.loads((bad / "config.json").read_text())
        (bad / "config.json").write_text(json.dumps({**meta, "model": "no-such-model"}))
        r = c.post("/v1/admin/reload", headers={"X-API-Key": keys[1]})
        assert r.status_code == 409 and "unknown model 'no-such-model'" in r.json()["detail"]
        assert (
            c.get("/v1/models", headers={"X-API-Key": keys[0]}).json()["serving"]["version"] == "v1"
        )


def test_latest_version_skips_incomplete(tmp_path):
    (tmp_path / "v3").mkdir()  # no config.json: still being written
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "config.json").write_text("{}")
    (tmp_path / ".v4.tmp").mkdir()
    assert latest_version(tmp_path).name == "v1"
    assert latest_version(tmp_path / "missing") is None
