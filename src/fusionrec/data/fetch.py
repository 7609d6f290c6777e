"""Download public datasets into a local cache, atomically, trying several sources in order.

The cache lives under ``$FUSIONREC_HOME`` (default ``~/.cache/fusionrec``) in
``datasets/<name>/``. A fetch writes into a hidden temp folder beside the target and renames
it into place only when complete (its ``fetch.json`` is the last file written), so an
interrupted fetch never leaves a half-written cache, and a second fetch is a cache hit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fusionrec.errors import FetchError

__all__ = [
    "Source",
    "DatasetSpec",
    "DATASETS",
    "cache_home",
    "dataset_cache_dir",
    "fetch",
    "url_zip_source",
    "recbole_wheel_source",
    "line_count_check",
]

log = logging.getLogger(__name__)

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
#: Seconds to wait for a connection (and for each read) before giving up on a URL.
CONNECT_TIMEOUT = 5.0
_STALE_TEMP_SECONDS = 3600.0
_MARKER = "fetch.json"


@dataclass(frozen=True)
class Source:
    """One way to obtain a dataset's files.

    ``get(dest, progress)`` writes the dataset files into the (existing, empty) folder ``dest``
    and raises on any failure; ``check(dest)``, when given, verifies the result.
    """

    label: str
    get: Callable[[Path, bool], None]
    check: Callable[[Path], None] | None = None
    #: Files this source writes, when known (an extra whose files exist already is skipped).
    provides: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """A known dataset: sources tried in order, plus optional best-effort extras."""

    name: str
    sources: tuple[Source, ...]
    #: Sources run after a successful primary source to add optional files (e.g. a KG);
    #: a failing extra is logged and recorded in ``fetch.json``, never fatal.
    extras: tuple[Source, ...] = ()
    homepage: str = ""
    notes: str = ""
    files: tuple[str, ...] = field(default_factory=tuple)


def cache_home() -> Path:
    """The cache root: ``$FUSIONREC_HOME`` or ``~/.cache/fusionrec``."""
    env = os.environ.get("FUSIONREC_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fusionrec"


def dataset_cache_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where dataset ``name`` is cached: ``<cache_dir or cache_home()/datasets>/<name>``."""
    root = Path(cache_dir) if cache_dir is not None else cache_home() / "datasets"
    return root / name


# ------------------------------------------------------------------------------- sources
def _safe_members(
    zf: zipfile.ZipFile, prefix: str | None
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Members under ``prefix`` (stripped), refusing absolute paths and ``..`` (zip slip)."""
    out = []
    for info in zf.infolist():
        if info.is_dir():
            continue
        p = PurePosixPath(info.filename)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"unsafe path in archive: {info.filename!r}")
        if prefix is not None:
            pre = PurePosixPath(prefix)
            if p.parts[: len(pre.parts)] != pre.parts:
                continue
            p = PurePosixPath(*p.parts[len(pre.parts) :])
        if p.parts and not p.parts[0].startswith("__MACOSX"):
            out.append((info, p))
    return out


def _extract(
    zpath: Path, dest: Path, prefix: str | None, only: Sequence[str] | None = None
) -> list[str]:
    with zipfile.ZipFile(zpath) as zf:
        members = _safe_members(zf, prefix)
        if only is not None:
            members = [(i, p) for i, p in members if p.name in only]
        if not members:
            raise ValueError(f"archive has no files under {prefix!r}")
        for info, rel in members:
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        return [str(p) for _, p in members]


def _bounded_dns(url: str, timeout: float) -> None:
    """Fail within ``timeout`` when the host name lookup hangs (socket timeouts do not cover DNS).

    A lookup error is not raised here: ``urlopen`` reports it (or reaches the host through a proxy).
    """
    host = urllib.parse.urlsplit(url).hostname
    if not host or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return
    th = threading.Thread(target=_lookup, args=(host,), daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        raise TimeoutError(f"looking up {host} took more than {timeout:g} s")


def _lookup(host: str) -> None:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        pass


def _download(url: str, out: Path, timeout: float, progress: bool) -> str:
    """Stream ``url`` to ``out``; return the md5 hex digest."""
    _bounded_dns(url, timeout)
    md5 = hashlib.md5()
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(out, "wb") as f:
        total = int(resp.headers.get("Content-Length") or 0) or None
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1])
        try:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                md5.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    return md5.hexdigest()


def url_zip_source(
    url: str, md5: str | None = None, prefix: str | None = None, timeout: float = CONNECT_TIMEOUT
) -> Source:
    """Download a zip from ``url`` (http(s) or file://), verify its md5 if given, extract it.

    ``prefix`` is the archive folder to take files from (stripped on extraction).
    """

    def get(dest: Path, progress: bool) -> None:
        zpath = dest / ".download.zip"
        try:
            digest = _download(url, zpath, timeout, progress)
            if md5 is not None and digest != md5:
                raise ValueError(f"md5 mismatch: got {digest}, expected {md5}")
            _extract(zpath, dest, prefix)
        finally:
            zpath.unlink(missing_ok=True)

    return Source(label=url, get=get)


def recbole_wheel_source(
    dataset: str = "ml-100k",
    version: str = "1.2.1",
    only: Sequence[str] | None = None,
    timeout: float = 300.0,
) -> Source:
    """Take ``recbole/dataset_example/<dataset>/*`` from the RecBole wheel on PyPI.

    The wheel is fetched with ``python -m pip download`` (so pip's index configuration and hash
    checking apply) into a temp folder, then the example files are extracted from it.
    ``only`` limits extraction to the named files.
    """

    def get(dest: Path, progress: bool) -> None:
        with tempfile.TemporaryDirectory(prefix=".wheel-", dir=dest) as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", f"recbole=={version}", "--no-deps",
                "--no-build-isolation", "--only-binary", ":all:", "-d", tmp, "--retries", "1",
                "--timeout", "20", "--disable-pip-version-check",
            ]  # fmt: skip
            if not progress:
                cmd.append("--quiet")
            try:
                res = subprocess.run(
                    cmd, capture_output=not progress, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"pip download did not finish within {timeout:.0f} s") from None
            if res.returncode != 0:
                err = (res.stderr or "").strip().splitlines()
                raise RuntimeError(
                    f"pip download failed ({err[-1] if err else f'exit {res.returncode}'})"
                )
            wheels = sorted(Path(tmp).glob("recbole-*.whl"))
            if not wheels:
                raise RuntimeError("pip download produced no recbole wheel")
            _extract(wheels[0], dest, f"recbole/dataset_example/{dataset}", only)

    what = f" ({', '.join(only)})" if only else ""
    return Source(
        label=f"RecBole {version} wheel from PyPI via pip{what}",
        get=get,
        provides=tuple(only or ()),
    )


def line_count_check(expected: dict[str, int]) -> Callable[[Path], None]:
    """A check that each named file exists with exactly the given number of non-blank lines."""

    def check(dest: Path) -> None:
        import numpy as np

        for fname, n in expected.items():
            p = dest / fname
            if not p.exists():
                raise ValueError(f"expected file {fname} is missing")
            data = np.frombuffer(p.read_bytes(), dtype=np.uint8)
            ends = np.flatnonzero(data == 10)
            if len(data) and data[-1] != 10:
                ends = np.r_[ends, len(data)]
            starts = np.r_[0, ends[:-1] + 1] if len(ends) else ends
            got = int(((ends - starts) > 0).sum())
            if got != n:
                raise ValueError(f"{fname} has {got} lines, expected {n}")

    return check


def _with_check(src: Source, check: Callable[[Path], None]) -> Source:
    return Source(src.label, src.get, check, src.provides)


# Non-blank line counts of the released files.
_ML100K_GROUPLENS = {"u.data": 100000, "u.item": 1682, "u.user": 943}
_ML100K_RECBOLE = {
    "ml-100k.inter": 100001,
    "ml-100k.item": 1683,
    "ml-100k.user": 944,
    "ml-100k.kg": 91632,
    "ml-100k.link": 1599,
}

#: Known datasets. md5 sums are the ones GroupLens publishes next to each archive
#: (``<archive>.md5``); ml-latest-small changes over time, so it is checked by its files only.
DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        name="ml-100k",
        sources=(
            _with_check(
                url_zip_source(
                    f"{GROUPLENS}/ml-100k.zip",
                    md5="0e33842e24a9c977be4e0107933c0723",
                    prefix="ml-100k",
                ),
                line_count_check(_ML100K_GROUPLENS),
            ),
            _with_check(recbole_wheel_source("ml-100k"), line_count_check(_ML100K_RECBOLE)),
        ),
        extras=(recbole_wheel_source("ml-100k", only=("ml-100k.kg", "ml-100k.link")),),
        homepage="https://grouplens.org/datasets/movielens/100k/",
        notes="GroupLens archive; the RecBole copy adds a Freebase KG (.kg/.link)",
    ),
    "ml-1m": DatasetSpec(
        name="ml-1m",
        sources=(
            _with_check(
                url_zip_source(
                    f"{GROUPLENS}/ml-1m.zip", md5="c4d9eecfca2ab87c1945afe126590906", prefix="ml-1m"
                ),
                line_count_check({"ratings.dat": 1000209, "users.dat": 6040}),
            ),
        ),
        homepage="https://grouplens.org/datasets/movielens/1m/",
    ),
    "ml-latest-small": DatasetSpec(
        name="ml-latest-small",
        sources=(url_zip_source(f"{GROUPLENS}/ml-latest-small.zip", prefix="ml-latest-small"),),
        homepage="https://grouplens.org/datasets/movielens/latest/",
        files=("ratings.csv", "movies.csv"),
    ),
    "ml-25m": DatasetSpec(
        name="ml-25m",
        sources=(
            url_zip_source(
                f"{GROUPLENS}/ml-25m.zip",
                md5="6b51fb2759a8657d3bfcbfc42b592ada",
                prefix="ml-25m",
                timeout=30.0,
            ),
        ),
        homepage="https://grouplens.org/datasets/movielens/25m/",
        files=("ratings.csv", "movies.csv"),
    ),
}


# --------------------------------------------------------------------------------- fetch
def _as_source(s: Source | Callable[[Path, bool], None]) -> Source:
    if isinstance(s, Source):
        return s
    if callable(s):
        return Source(label=getattr(s, "__name__", repr(s)), get=s)
    raise TypeError(
        f"a source must be a Source or a callable(dest, progress), got {type(s).__name__}"
    )


def _clean_stale(root: Path, name: str) -> None:
    now = time.time()
    for p in root.glob(f".{name}.part-*"):
        try:
            if now - p.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:  # pragma: no cover - raced with another cleaner
            pass


def _reset(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def fetch(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    sources: Sequence[Source | Callable[[Path, bool], None]] | None = None,
    progress: bool = False,
) -> Path:
    """Make dataset ``name`` available locally and return its cache folder.

    Args:
        name: a known dataset (see ``DATASETS``) or any name when ``sources`` is given.
        cache_dir: folder holding the per-dataset folders (default ``cache_home()/"datasets"``).
        sources: replaces the registered sources (``Source`` objects or callables
            ``(dest, progress)`` writing files into ``dest``); tried in order.
        progress: show download progress bars.

    Returns:
        ``<cache_dir>/<name>``, holding the dataset files and ``fetch.json`` (which source, when).

    Raises:
        FetchError: when every source failed; the message lists each source and its failure
            and says how to load local files instead.
    """
    spec = DATASETS.get(name)
    if spec is None and sources is None:
        raise FetchError(
            f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}. "
            f"To use local files call load_dataset('/path/to/folder_or_file')."
        )
    target = dataset_cache_dir(name, cache_dir)
    if (target / _MARKER).exists():
        log.debug("cache hit: %s", target)
        return target
    if target.exists():
        raise FetchError(
            f"{target} exists but is not a complete fetch (no {_MARKER}); remove it and fetch again, "
            f"or load its files with load_dataset('{target}')"
        )
    srcs = [_as_source(s) for s in (sources if sources is not None else spec.sources)]  # type: ignore[union-attr]
    extras = spec.extras if (spec is not None and sources is None) else ()
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root, name)
    tmp = root / f".{name}.part-{uuid.uuid4().hex[:12]}"
    failures: list[str] = []
    try:
        for src in srcs:
            _reset(tmp)
            t0 = time.perf_counter()
            try:
                log.info("fetching %s from %s", name, src.label)
                src.get(tmp, progress)
                if src.check is not None:
                    src.check(tmp)
                if spec is not None and sources is None:
                    missing = [f for f in spec.files if not (tmp / f).exists()]
                    if missing:
                        raise ValueError(f"expected file(s) missing: {', '.join(missing)}")
            except Exception as e:  # each failure is reported, then the next source is tried
                failures.append(f"{src.label}: {type(e).__name__}: {e}")
                log.info("source %s failed: %s", src.label, e)
                continue
            meta: dict[str, object] = {
                "name": name,
                "source": src.label,
                "seconds": round(time.perf_counter() - t0, 3),
                "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "failed_sources": failures,
                "extras": [],
            }
            for extra in extras:
                if extra.provides and all((tmp / f).exists() for f in extra.provides):
                    continue
                try:
                    extra.get(tmp, progress)
                    meta["extras"].append({"source": extra.label, "ok": True})  # type: ignore[union-attr]
                except Exception as e:  # optional files: never fatal
                    log.warning("optional extra for %s not fetched (%s: %s)", name, extra.label, e)
                    meta["extras"].append({"source": extra.label, "ok": False, "error": str(e)})  # type: ignore[union-attr]
            (tmp / _MARKER).write_text(json.dumps(meta, indent=2))
            try:
                tmp.rename(target)
            except OSError:
                if (target / _MARKER).exists():  # another process finished first
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    raise
            log.info("fetched %s from %s into %s", name, src.label, target)
            return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raise FetchError(
        f"could not fetch dataset {name!r}; every source failed:\n"
        + "\n".join(f"  - {f}" for f in failures)
        + "\nTo use files you already have, download them yourself and call "
        "load_dataset('/path/to/folder') (MovieLens or RecBole atomic files) "
        "or load_dataset('/path/to/interactions.csv')."
    )
