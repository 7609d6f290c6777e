"""``fusionrec serve --workers N``: processes sharing the model read-only and the event store.

The HTTP test starts real servers (127.0.0.1 only, a free port, bounded waits, always killed in
a ``finally``): a 2-worker server answers exactly as a 1-worker server does. The coherence
test runs two services on one database and one change counter, as two workers do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fusionrec.models.classic.bpr import BPR
from fusionrec.serving.auth import KeyStore
from fusionrec.serving.engine import ModelState
from fusionrec.serving.service import Service
from fusionrec.serving.settings import ServeSettings
from fusionrec.serving.shared_arrays import map_model_arrays, read_safetensors_mapped
from fusionrec.serving.worker_sync import ChangeCounter
from fusionrec.testing.servers import (
    STARTUP_LINE,
    ServerProcess,
    ServerStartError,
    free_port,
    serve_command,
    start_server,
    wait_ready,
)

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def bpr_dir(tmp_path_factory) -> Path:
    from fusionrec.testing.toy import toy_dataset

    d = tmp_path_factory.mktemp("bpr") / "model"
    BPR(epochs=3, embedding_dim=8).fit(toy_dataset(), seed=0).save(d)
    return d


def _env() -> dict[str, str]:
    """This process's environment without FUSIONREC_ settings, plus the test server's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSIONREC_")}
    env.update(FUSIONREC_ANN_NPROBE="512", FUSIONREC_CACHE_SIZE="0", HF_HUB_OFFLINE="1")
    return env


def _answers(url: str, key: str, users: list[str], items: list[str]) -> list:
    out = []
    for u in users:  # a new connection each time: the kernel spreads them over the workers
        r = httpx.post(url + "/v1/recommend", json={"user_id": u, "k": 5}, headers={"X-API-Key": key}, timeout=30)
        assert r.status_code == 200, r.text
        b = r.json()
        out.append((u, [(x["item_id"], round(x["score"], 5)) for x in b["items"]], b["strategy"]))
    for i in items:
        r = httpx.get(f"{url}/v1/items/{i}/similar", params={"k": 5}, headers={"X-API-Key": key}, timeout=30)
        assert r.status_code == 200, r.text
        out.append((i, [x["item_id"] for x in r.json()["items"]]))
    return out


def test_two_workers_answer_as_one(bpr_dir: Path, tmp_path: Path) -> None:
    from fusionrec.models.base import load_model

    m = load_model(bpr_dir)
    users = [str(u) for u in m.users_.ids[:30]] + ["never-seen-user"]
    items = [str(i) for i in m.items_.ids[:5]]
    got = {}
    for workers in (1, 2):
        db = f"sqlite:///{tmp_path / f'w{workers}.db'}"
        key, _ = KeyStore(db).create("test")
        log = tmp_path / f"w{workers}.log"  # uvicorn's lines: one "startup complete" per worker
        ann = ("--ann", "--ann-kind", "hnsw")
        with start_server(
            bpr_dir, events=db, log=log, workers=workers, serve_args=ann, env=_env(), limit_s=240
        ) as srv:
            assert len(srv.spawned_workers()) == (workers if workers > 1 else 0)
            assert len(srv.serving_pids()) == workers
            assert httpx.get(srv.url + "/readyz", timeout=10).status_code == 200
            got[workers] = _answers(srv.url, key, users, items)
    assert got[1] == got[2]
    assert {a[2] for a in got[1][: len(users) - 1]} == {"ann"}  # known users: the ANN path


def _mapping_of(addr: int) -> str | None:
    """The file mapped at address ``addr`` of this process (/proc/self/maps), if any."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= addr < hi:
            return parts[5] if len(parts) > 5 else None
    return None


def test_mapped_arrays_live_in_the_state_file(bpr_dir: Path) -> None:
    """After mapping, the model's tables are pages of state.safetensors and score as before."""
    private = ModelState.load(bpr_dir, mmap=False, validate=False).model
    model = ModelState.load(bpr_dir, mmap=True, validate=False).model
    np.testing.assert_array_equal(model.score_indices(np.arange(5)), private.score_indices(np.arange(5)))
    state_file = str((bpr_dir / "state.safetensors").resolve())
    for t in (model.module_.user.weight, model.module_.item.weight):
        assert _mapping_of(t.data_ptr()) == state_file
    assert _mapping_of(model.seen_.indices.ctypes.data) == state_file
    assert _mapping_of(private.module_.item.weight.data_ptr()) != state_file
    report = map_model_arrays(private, bpr_dir)
    assert {"module.user.weight", "module.item.weight", "_seen_indices", "_seen_indptr"} <= set(report.names)
    assert report.bytes >= (private.n_users + private.n_items) * 8 * 4
    assert _mapping_of(private.module_.item.weight.data_ptr()) == state_file
    assert isinstance(read_safetensors_mapped(bpr_dir / "state.safetensors")["module.item.weight"], np.memmap)


def test_feedback_in_one_worker_reaches_the_other_caches(tmp_path: Path, model_dir: Path) -> None:
    """Worker B cached a user's answer and feedback items; worker A stores an event for that
    user; B's next look at its caches sees neither the stale answer nor the stale items."""
    common = dict(
        model_dir=model_dir,
        events_url=f"sqlite:///{tmp_path / 'shared.db'}",
        cache_size=100,
        gc_freeze=False,
        sync_file=tmp_path / "changes",
    )
    a, b = Service(ServeSettings(**common)), Service(ServeSettings(**common))
    try:
        assert b.event_items("u1") == []
        b.cache.put("u1", ("u1", 5), {"items": ["stale"]})
        assert b.cached_event_items("u1") == []
        a.add_event("u1", "b", "click", None, None)
        assert b.cache.get(("u1", 5)) is None
        assert b.cached_event_items("u1") is None  # dropped: the next read goes to the database
        assert b.event_items("u1") == ["b"]
        b.cache.put("u2", ("u2", 5), {"items": ["x"]})
        a.add_event("u1", "c", "view", None, None)
        assert b.cache.get(("u2", 5)) == {"items": ["x"]}  # other users keep their answers
        assert b.event_items("u1") == ["b", "c"]
    finally:
        a.close()
        b.close()


def test_change_counter_counts_across_handles(tmp_path: Path) -> None:
    x, y = ChangeCounter(tmp_path / "c"), ChangeCounter(tmp_path / "c")
    try:
        assert x.value() == y.value() == 0
        assert x.bump() == 1 and y.bump() == 2
        assert x.value() == 2
    finally:
        x.close()
        y.close()


def test_serve_command_is_the_cli_on_localhost(tmp_path: Path) -> None:
    cmd = serve_command(tmp_path / "m", port=8123, events="sqlite:///e.db", workers=2, serve_args=("--ann",))
    assert cmd[:3] == [sys.executable, "-m", "fusionrec.cli.main"]
    assert cmd[3:] == [
        "serve", "--model-dir", str(tmp_path / "m"), "--host", "127.0.0.1", "--port", "8123",
        "--events", "sqlite:///e.db", "--workers", "2", "--log-level", "info", "--ann",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        serve_command(tmp_path, port=1, events="sqlite://", workers=0)


def test_start_server_refuses_a_missing_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="model folder .*nope does not exist"):
        start_server(tmp_path / "nope", events="sqlite://", log=tmp_path / "log")


def test_a_server_that_fails_to_start_is_reaped(tmp_path: Path) -> None:
    """An empty model folder: ``fusionrec serve`` exits, start_server says so with the log."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServerStartError, match=r"server exited with [1-9]\d* \(log .*serve.log\):\n") as e:
        start_server(tmp_path / "empty", events="sqlite://", log=tmp_path / "serve.log", env=_env(), limit_s=240)
    assert "config.json" in str(e.value)  # the CLI's own message, from the log's tail


def _fake(tmp_path: Path, script: str, workers: int = 1) -> ServerProcess:
    """A stand-in 'server' (a shell script in its own session) on a port nobody listens on."""
    log = tmp_path / "fake.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(["sh", "-c", script], stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    return ServerProcess(proc, f"http://127.0.0.1:{free_port()}", log, workers, time.perf_counter())


def test_wait_reports_an_exit_with_the_log_tail(tmp_path: Path) -> None:
    srv = _fake(tmp_path, "echo boom: no model; exit 3")
    srv.process.wait(10)
    with pytest.raises(ServerStartError, match=r"server exited with 3 \(log .*fake.log\):\nboom: no model"):
        srv.wait_until_serving(limit_s=5)


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_wait_gives_up_after_the_limit_and_stop_ends_the_group(tmp_path: Path) -> None:
    # logs one worker's startup of two and never answers /readyz; a child shares its group
    srv = _fake(tmp_path, f"echo '{STARTUP_LINE}'; sleep 60 & echo $! > {tmp_path / 'child'}; sleep 60", workers=2)
    t0 = time.perf_counter()
    with pytest.raises(ServerStartError, match=r"server not ready after 0.5 s \(1 of 2 workers started\)"):
        srv.wait_until_serving(limit_s=0.5, poll_s=0.05)
    assert time.perf_counter() - t0 < 5
    child = int((tmp_path / "child").read_text())
    srv.stop(grace_s=5)
    assert srv.process.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the child in the server's group outlived stop()"
        time.sleep(0.05)
    srv.stop()  # a second stop is a no-op


def test_wait_ready_without_a_log_needs_only_readyz(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        with pytest.raises(ServerStartError, match=r"^server not ready after 0.2 s$"):
            wait_ready(f"http://127.0.0.1:{free_port()}", proc, limit_s=0.2, poll_s=0.05)
    finally:
        proc.kill()
        proc.wait()
