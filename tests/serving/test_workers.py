"""``fusionrec serve --workers N``: processes sharing the model read-only and the event store.

The HTTP test starts real servers (127.0.0.1 only, a free port, bounded waits, always killed in
a ``finally``): a 2-worker server answers exactly as a 1-worker server does. The coherence
test runs two services on one database and one change counter, as two workers do.
"""

from __future__ import annotations

import os
import signal
import socket
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

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def bpr_dir(tmp_path_factory) -> Path:
    from fusionrec.testing.toy import toy_dataset

    d = tmp_path_factory.mktemp("bpr") / "model"
    BPR(epochs=3, embedding_dim=8).fit(toy_dataset(), seed=0).save(d)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workers(pid: int) -> list[int]:
    """The worker processes of a uvicorn parent (its spawned children, not the resource tracker)."""
    try:
        kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    out = []
    for k in kids:
        try:
            if b"resource_tracker" not in Path(f"/proc/{k}/cmdline").read_bytes():
                out.append(k)
        except OSError:
            pass
    return out


def _start(model_dir: Path, db: str, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "fusionrec.cli.main", "serve", "--model-dir", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--events", db, "--workers", str(workers),
        "--ann", "--ann-kind", "hnsw", "--log-level", "info",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSIONREC_")}
    env.update(FUSIONREC_ANN_NPROBE="512", FUSIONREC_CACHE_SIZE="0", HF_HUB_OFFLINE="1")
    with log.open("wb") as f:  # uvicorn's lines: one "startup complete" per worker
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _wait_ready(proc: subprocess.Popen, log: Path, workers: int, limit_s: float = 240.0) -> None:
    """Until every worker has finished its startup (the model loaded), bounded in time."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        if log.read_text().count("Application startup complete") >= workers:
            return
        time.sleep(0.3)
    raise AssertionError(f"server not ready after {limit_s:g} s:\n{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


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
        log = tmp_path / f"w{workers}.log"
        proc, url = _start(bpr_dir, db, workers, log)
        try:
            _wait_ready(proc, log, workers)
            assert len(_workers(proc.pid)) == (workers if workers > 1 else 0)
            assert httpx.get(url + "/readyz", timeout=10).status_code == 200
            got[workers] = _answers(url, key, users, items)
        finally:
            _stop(proc)
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
