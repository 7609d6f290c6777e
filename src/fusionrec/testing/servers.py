"""Run ``fusionrec serve`` as a child process, for tests and benchmarks that need a real server.

``start_server`` binds a free port on 127.0.0.1, logs uvicorn's lines to a file, puts the
server in its own process group and waits, bounded in time, until ``/readyz`` answers 200 and
every worker has logged its startup (``wait_ready``; each worker has then loaded the model,
while ``/readyz`` answers as soon as one of them has). ``ServerProcess.stop`` ends the whole
group (uvicorn's parent and its workers), as leaving ``with start_server(...)`` does.

Only the standard library is used here (the readiness probe is ``urllib``), and the server is
reached through its command line, so this module imports nothing of ``fusionrec.serving``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fusionrec.errors import FusionRecError

__all__ = [
    "STARTUP_LINE",
    "ServerProcess",
    "ServerStartError",
    "free_port",
    "serve_command",
    "start_server",
    "wait_ready",
]

STARTUP_LINE = "Application startup complete"
"""What uvicorn logs (at ``--log-level info``) once per worker when its lifespan has started."""

_HOST = "127.0.0.1"


class ServerStartError(FusionRecError, RuntimeError):
    """The server exited, or was not serving within the time allowed. The message says which and,
    where the server's log is known, ends with its last lines."""


def free_port(host: str = _HOST) -> int:
    """A TCP port nothing listens on at ``host`` right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve_command(
    model_dir: Path, *, port: int, events: str, workers: int = 1, serve_args: Sequence[str] = ()
) -> list[str]:
    """The ``fusionrec serve`` command line: this interpreter, 127.0.0.1:``port``, the event store
    ``events`` (a database URL), ``workers`` uvicorn processes, uvicorn's startup lines logged
    (``--log-level info``; the access log stays off), then ``serve_args`` (e.g. ``--ann``)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return [
        sys.executable, "-m", "fusionrec.cli.main", "serve", "--model-dir", str(model_dir),
        "--host", _HOST, "--port", str(port), "--events", events, "--workers", str(workers),
        "--log-level", "info", *serve_args,
    ]  # fmt: skip


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _is_resource_tracker(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # gone already: not a worker either


def _started_workers(log: Path) -> int:
    try:
        return log.read_text(errors="replace").count(STARTUP_LINE)
    except OSError:
        return 0


# no proxies: a proxy from the environment must not stand between us and 127.0.0.1
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers_ready(url: str) -> bool:
    try:
        with _DIRECT.open(url + "/readyz", timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):  # 503 while loading, refused before binding
        return False


def _failure(what: str, log: Path | None) -> ServerStartError:
    if log is None:
        return ServerStartError(what)
    try:
        tail = log.read_text(errors="replace")[-2000:]
    except OSError:
        tail = ""
    return ServerStartError(f"{what} (log {log}):\n{tail}")


def wait_ready(
    url: str,
    process: subprocess.Popen[bytes],
    *,
    log: Path | None = None,
    workers: int = 1,
    limit_s: float = 300.0,
    poll_s: float = 0.25,
) -> None:
    """Return once ``url``/readyz answers 200 and, when ``log`` is given, ``workers`` workers have
    logged their startup there; raise ``ServerStartError`` when ``process`` exits first or
    ``limit_s`` seconds pass."""
    t0 = time.perf_counter()
    while True:
        if process.poll() is not None:
            raise _failure(f"server exited with {process.returncode}", log)
        started = workers if log is None else _started_workers(log)
        if started >= workers and _answers_ready(url):
            return
        if time.perf_counter() - t0 > limit_s:
            counted = "" if log is None else f" ({started} of {workers} workers started)"
            raise _failure(f"server not ready after {limit_s:g} s{counted}", log)
        time.sleep(poll_s)


@dataclass(frozen=True)
class ServerProcess:
    """A started ``fusionrec serve``: its process, base URL, log file and worker count."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    workers: int
    started_at: float
    """``time.perf_counter()`` right after the process was spawned."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def spawned_workers(self) -> list[int]:
        """The worker processes uvicorn spawned (none with one worker: the parent serves), not
        multiprocessing's resource tracker."""
        return [k for k in _children(self.pid) if not _is_resource_tracker(k)]

    def serving_pids(self) -> list[int]:
        """The processes that answer requests: the server itself with one worker, else its
        spawned workers."""
        return [self.pid] if self.workers == 1 else self.spawned_workers()

    def wait_until_serving(self, limit_s: float = 300.0, poll_s: float = 0.25) -> None:
        """``wait_ready`` for this server: ``/readyz`` answers and every worker has started."""
        wait_ready(self.url, self.process, log=self.log, workers=self.workers, limit_s=limit_s, poll_s=poll_s)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``grace_s`` seconds."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:  # exited between poll() and killpg
            self.process.wait(10)


def start_server(
    model_dir: Path,
    *,
    events: str,
    log: Path,
    workers: int = 1,
    serve_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    limit_s: float | None = 300.0,
) -> ServerProcess:
    """Spawn ``fusionrec serve`` (see ``serve_command``) on a free port, its output written to
    ``log``, in a new session so ``stop`` reaches every worker, and wait up to ``limit_s``
    seconds until it serves (``None``: return at once; call ``wait_until_serving``). A server
    that fails to start is stopped before ``ServerStartError`` is raised. ``env`` is the
    child's whole environment (default: this process's); ``prefix`` goes before the command
    (e.g. ``("taskset", "-c", "0")``). Use the result in a ``with`` block to stop it after."""
    if not Path(model_dir).is_dir():
        raise ServerStartError(f"model folder {model_dir} does not exist")
    port = free_port()
    cmd = [*prefix, *serve_command(model_dir, port=port, events=events, workers=workers, serve_args=serve_args)]
    with log.open("wb") as f:
        proc = subprocess.Popen(
            cmd,
            env=dict(os.environ if env is None else env),
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(proc, f"http://{_HOST}:{port}", log, workers, time.perf_counter())
    if limit_s is not None:
        try:
            server.wait_until_serving(limit_s)
        except BaseException:
            server.stop()
            raise
    return server
