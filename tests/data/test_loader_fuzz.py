"""Loader fuzzing: every mutated file loads as a sound Dataset or fails with our own error naming it.

The mutator and oracle live in ``_loader_mutations.py`` (also a script printing the figures).
Default run: 40 cases per format (280); ``-m slow``: 600 per format (4,200).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _loader_mutations import FORMATS, run_many, seed_files, write_case

from fusionrec.data import Dataset, load_dataset
from fusionrec.data.fetch import dataset_cache_dir
from fusionrec.data.loading import BUILT_DIR
from fusionrec.errors import DataFormatError


def _run(n: int, tmp_path: Path, start: int = 0) -> None:
    log: list[str] = []
    res = run_many(n, tmp_path, start=start, log=log.append)
    bad = {f: (c["crash"], c["silent"]) for f, c in res.items() if c["crash"] or c["silent"]}
    assert not bad, "\n".join(log[:20])
    # the mutations must reach both outcomes, or the test proves nothing
    assert sum(c["ok"] for c in res.values()) > 0
    assert sum(c["rejected"] for c in res.values()) > n


def test_fuzz_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    _run(40, tmp_path)


@pytest.mark.slow
def test_fuzz_slow(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    _run(600, tmp_path, start=1000)


def test_seeds_are_valid(tmp_path: Path) -> None:
    for fmt in FORMATS:
        if fmt in ("parquet", "saved"):
            continue
        d = tmp_path / fmt
        d.mkdir()
        for n, b in seed_files(fmt).items():
            (d / n).write_bytes(b)
        ds = load_dataset(d / "interactions.csv" if fmt == "csv" else d)
        assert ds.n_interactions == 18 and ds.n_users == 6


def test_case_writer_is_deterministic(tmp_path: Path) -> None:
    a = write_case("ml100k", 7, tmp_path / "a")
    b = write_case("ml100k", 7, tmp_path / "b")
    assert a.text_files == b.text_files


# ------------------------------------------------------------ the named defects
def _csv(tmp_path: Path, body: bytes, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(b"user_id,item_id,rating,timestamp\n" + body)
    return p


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (b"u1,i1,inf,5\n", r"t\.csv, line 2: field 'rating': 'inf' is not a finite number"),
        (b"u1,i1,4,1e309\n", r"line 2: field 'timestamp': '1e309' is not a finite number"),
        (b"u1,i1,4,5\nu2,i1,-Infinity,5\n", r"line 3: field 'rating'"),
        (b"u1,i1,4,5\n196\x00,i1,4,5\n", r"line 3: the control character '\\x00' at column 4"),
        (b"u1,i\x01,4,5\n", r"line 2: the control character '\\x01'"),
        (b"u1,i1,4,5\r\"u2\",i1,4,5\n", r"line 2: a carriage return not followed by a line feed"),
    ],
)
def test_csv_defects_name_file_and_line(tmp_path: Path, body: bytes, msg: str) -> None:
    with pytest.raises(DataFormatError, match=msg):
        load_dataset(_csv(tmp_path, body))


def test_blank_csv(tmp_path: Path) -> None:
    p = tmp_path / "blank.csv"
    for content in (b"", b"\n\n", b" \n"):
        p.write_bytes(content)
        with pytest.raises(DataFormatError, match=r"blank\.csv"):
            load_dataset(p)


def test_trailing_nul_is_not_merged_into_another_id(tmp_path: Path) -> None:
    d = tmp_path / "ml"
    d.mkdir()
    (d / "u.data").write_bytes(b"196\t1\t3\t881250949\n196\x00\t2\t3\t881250950\n")
    with pytest.raises(DataFormatError, match=r"u\.data, line 2: the control character"):
        load_dataset(d)


def test_empty_id_in_atomic_file(tmp_path: Path) -> None:
    d = tmp_path / "a"
    d.mkdir()
    (d / "a.inter").write_text("user_id:token\titem_id:token\n1\t2\n\t3\n")
    with pytest.raises(DataFormatError, match=r"a\.inter, line 3: empty user_id"):
        load_dataset(d)
    (d / "a.inter").write_text("user_id:token\titem_id:token\n1\t2\n 1\t3\n")
    with pytest.raises(DataFormatError, match=r"line 3: user_id ' 1' has leading or trailing blanks"):
        load_dataset(d)


@pytest.mark.parametrize(
    ("column", "msg"),
    [
        (pa.array([b"u1", b"u2"], pa.binary()), "holds binary values"),
        (pa.array([[1], [2]]), "holds nested"),
        (pa.array(["u1", None]), r"line 2: empty user_id"),
        (pa.array(["u1", "u1\x00"]), r"line 2: user_id 'u1\\x00' contains a control character"),
        (pa.array([1.0, 2.5]), r"line 2: user_id 2.5 .* is not a whole number"),
        (pa.array([True, False]), "holds booleans"),
    ],
)
def test_parquet_bad_ids(tmp_path: Path, column: pa.Array, msg: str) -> None:
    t = pa.table({"user_id": column, "item_id": ["i1", "i2"], "rating": [1.0, 2.0]})
    p = tmp_path / "t.parquet"
    pq.write_table(t, p)
    with pytest.raises(DataFormatError, match=msg):
        load_dataset(p)


def test_parquet_infinite_rating(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": [1.0, np.inf]}).to_parquet(p)
    with pytest.raises(DataFormatError, match=r"t\.parquet, line 2: field 'rating'"):
        load_dataset(p)


def test_parquet_integer_ids_kept(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pd.DataFrame({"user_id": [10, 11], "item_id": [1.0, 2.0]}).to_parquet(p)
    ds = load_dataset(p)
    assert ds.users.ids.tolist() == ["10", "11"] and ds.items.ids.tolist() == ["1", "2"]


# ------------------------------------------------------------------ saved folders
def _saved(tmp_path: Path) -> tuple[Dataset, Path]:
    ds = Dataset.from_frames(
        pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "rating": [1.0, 2.0, 3.0]})
    )
    return ds, ds.save(tmp_path / "saved")


def test_saved_folder_has_manifest_and_detects_damage(tmp_path: Path) -> None:
    ds, path = _saved(tmp_path)
    assert (path / "manifest.json").exists()
    assert Dataset.load(path).n_interactions == 3
    b = (path / "interactions.parquet").read_bytes()
    (path / "interactions.parquet").write_bytes(b[:-10])
    with pytest.raises(DataFormatError, match=r"interactions\.parquet: \d+ bytes, the manifest says"):
        Dataset.load(path)
    (path / "interactions.parquet").write_bytes(b[:-1] + bytes([b[-1] ^ 1]))
    with pytest.raises(DataFormatError, match=r"interactions\.parquet: content differs"):
        Dataset.load(path)


def test_saved_folder_without_manifest_is_validated(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    (path / "manifest.json").unlink()
    df = pd.read_parquet(path / "interactions.parquet")
    df.loc[0, "rating"] = np.inf
    df.to_parquet(path / "interactions.parquet", index=False)
    with pytest.raises(DataFormatError, match=r"saved: field 'rating'"):
        Dataset.load(path)
    df.loc[0, "rating"] = 1.0
    df["item_id"] = df["item_id"].astype(str)  # saved as a dictionary column (Categorical here)
    df.loc[1, "item_id"] = "nobody"
    df.to_parquet(path / "interactions.parquet", index=False)
    with pytest.raises(DataFormatError, match=r"interactions\.parquet: names item 'nobody', which is not in the id table"):
        Dataset.load(path)
    (path / "meta.json").write_text('{"format_version": 1, "name": 3}')
    with pytest.raises(DataFormatError, match=r"meta\.json: 'name' must be a string"):
        Dataset.load(path)


def test_embedding_name_cannot_escape_the_folder(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    (path / "manifest.json").unlink()
    import json

    meta = json.loads((path / "meta.json").read_text())
    meta["item_embeddings"] = ["../../etc/x"]
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="not a plain file name"):
        Dataset.load(path)


def test_damaged_cache_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A built cache that is truncated, altered or lacks its manifest is rebuilt from the raw files."""
    raw = dataset_cache_dir("ml-100k", tmp_path)
    raw.mkdir(parents=True)
    for n, b in seed_files("atomic").items():
        (raw / n.replace("toy", "ml-100k")).write_bytes(b)
    (raw / "fetch.json").write_text("{}")  # the fetch marker: raw files are "already fetched"
    first = load_dataset("ml-100k", cache_dir=tmp_path)
    built = raw / BUILT_DIR
    assert (built / "manifest.json").exists()
    for damage in ("truncate", "flip", "no-manifest", "meta"):
        p = built / "interactions.parquet"
        b = p.read_bytes()
        if damage == "truncate":
            p.write_bytes(b[: len(b) // 2])
        elif damage == "flip":
            p.write_bytes(b[:100] + bytes([b[100] ^ 0xFF]) + b[101:])
        elif damage == "no-manifest":
            (built / "manifest.json").unlink()
        else:
            (built / "meta.json").write_text("{")
        with caplog.at_level(logging.WARNING):
            again = load_dataset("ml-100k", cache_dir=tmp_path)
        assert "rebuilding" in caplog.text
        caplog.clear()
        assert np.array_equal(again.user_idx, first.user_idx) and again.n_items == first.n_items
        assert Dataset.load(built).n_interactions == first.n_interactions  # repaired on disk


def test_mutator_output_reaches_loader(tmp_path: Path) -> None:
    """The figures script runs end to end (guards the harness itself)."""
    buf = io.StringIO()
    res = run_many(3, tmp_path, log=lambda s: print(s, file=buf))
    assert set(res) == set(FORMATS) and all(sum(c.values()) == 3 for c in res.values())
