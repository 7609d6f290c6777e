"""A seeded mutator over small valid dataset files of every format, and the oracle that judges a load.

Used by ``test_loader_fuzz.py`` and runnable as a script for the figures::

    python tests/data/_loader_mutations.py 3000      # cases per run, all formats

Every case is a folder or file derived from a valid seed by one to three mutations. A load
must end in one of two ways:

* ``ok``: a Dataset that passes ``validate_dataset`` *and* the independent checks below
  (ids non-empty, no control characters, no surrounding blanks, finite ratings/timestamps,
  no control byte anywhere in the text files it accepted);
* ``rejected``: a :class:`FusionRecError` whose message names a file or folder of the case.

Anything else is a ``crash`` (another exception) or a ``silent`` accept (broken data loaded).
"""

from __future__ import annotations

import io
import json
import random
import shutil
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("atomic", "ml100k", "ml1m", "mlcsv", "csv", "parquet", "saved")

_SPECIAL = [
    "", " ", "inf", "-inf", "Infinity", "1e309", "-1e309", "nan", "NaN", "\x00", "196\x00",
    "\x00196", "a\x01b", "x\x7fy", '"', '"x', 'x"', '""', "\r", "\r\n", "\n", "1e5", "-1",
    "abc", "\u0663", "\ufeff", "0x10", "1_000", "9" * 400, "é", "\t", ",", "|", "::", "\x1f",
]


# ------------------------------------------------------------------------ seeds
def _ratings(n_users: int = 6, n_items: int = 5, seed: int = 0) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, n_items + 1), size=3, replace=False).tolist():
            rows.append((u, i, int(rng.integers(1, 6)), 874965758 + 17 * len(rows)))
    return rows


def seed_files(fmt: str) -> dict[str, bytes]:
    """The valid files of one format (name -> bytes); ``parquet``/``saved`` are built in ``write_case``."""
    r = _ratings()
    if fmt == "atomic":
        inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
            f"{u}\t{i}\t{s}\t{t}\n" for u, i, s, t in r
        )
        item = "item_id:token\tmovie_title:token_seq\tclass:token_seq\tprice:float\n" + "".join(
            f"{i}\tFilm number {i}\tDrama Comedy\t{i}.5\n" for i in range(1, 6)
        )
        user = "user_id:token\tage:float\tgender:token\n" + "".join(
            f"{u}\t{20 + u}\t{'MF'[u % 2]}\n" for u in range(1, 7)
        )
        return {"toy.inter": inter.encode(), "toy.item": item.encode(), "toy.user": user.encode()}
    if fmt == "ml100k":
        data = "".join(f"{u}\t{i}\t{s}\t{t}\n" for u, i, s, t in r)
        flags = lambda i: "|".join("1" if k == i % 19 else "0" for k in range(19))  # noqa: E731
        item = "".join(
            f"{i}|Film {i} (199{i})|01-Jan-199{i}||http://x/{i}|{flags(i)}\n" for i in range(1, 6)
        )
        user = "".join(f"{u}|{20 + u}|{'MF'[u % 2]}|writer|0{u}000\n" for u in range(1, 7))
        return {"u.data": data.encode("latin-1"), "u.item": item.encode("latin-1"), "u.user": user.encode()}
    if fmt == "ml1m":
        data = "".join(f"{u}::{i}::{s}::{t}\n" for u, i, s, t in r)
        movies = "".join(f"{i}::Film {i} (199{i})::Drama|Comedy\n" for i in range(1, 6))
        users = "".join(f"{u}::{'MF'[u % 2]}::25::4::0{u}000\n" for u in range(1, 7))
        return {"ratings.dat": data.encode(), "movies.dat": movies.encode(), "users.dat": users.encode()}
    if fmt == "mlcsv":
        data = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{s}.0,{t}\n" for u, i, s, t in r)
        movies = "movieId,title,genres\n" + "".join(
            f'{i},"Film, the {i} (199{i})",Drama|Comedy\n' for i in range(1, 6)
        )
        return {"ratings.csv": data.encode(), "movies.csv": movies.encode()}
    if fmt == "csv":
        data = "user_id,item_id,rating,timestamp\n" + "".join(f"u{u},i{i},{s},{t}\n" for u, i, s, t in r)
        return {"interactions.csv": data.encode()}
    raise ValueError(fmt)


def _parquet_table() -> pd.DataFrame:
    r = _ratings()
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u, *_ in r],
            "item_id": [f"i{i}" for _, i, *_ in r],
            "rating": [float(s) for *_, s, _ in r],
            "timestamp": [t for *_, t in r],
        }
    )


# -------------------------------------------------------------------- mutations
def _mutate_text(files: dict[str, bytes], rng: random.Random) -> str:
    name = rng.choice(sorted(files))
    b = files[name]
    kind = rng.randrange(14)
    lines = b.split(b"\n")
    if kind == 0 and b:  # replace one field by a special value
        li = rng.randrange(len(lines))
        line = lines[li].decode("latin-1")
        seps = [s for s in ("::", "\t", ",", "|") if s in line]
        sep = seps[0] if seps else "\t"
        parts = line.split(sep)
        parts[rng.randrange(len(parts))] = rng.choice(_SPECIAL)
        lines[li] = sep.join(parts).encode("latin-1", errors="replace")
        files[name] = b"\n".join(lines)
    elif kind == 1:  # append a special value to a field
        li = rng.randrange(len(lines))
        lines[li] = lines[li] + rng.choice(_SPECIAL).encode("utf-8")
        files[name] = b"\n".join(lines)
    elif kind == 2 and b:  # insert random bytes
        p = rng.randrange(len(b) + 1)
        files[name] = b[:p] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 3))) + b[p:]
    elif kind == 3 and b:  # delete bytes
        p = rng.randrange(len(b))
        files[name] = b[:p] + b[p + rng.randint(1, 4) :]
    elif kind == 4:  # truncate
        files[name] = b[: rng.randrange(len(b) + 1)]
    elif kind == 5:  # empty / blank file
        files[name] = rng.choice([b"", b"\n", b"\n\n", b" \n", b"\r\n"])
    elif kind == 6:  # lone CR or CRLF line ends
        files[name] = b.replace(b"\n", rng.choice([b"\r", b"\r\n", b"\n\r"]))
    elif kind == 7:  # duplicate or swap lines
        li = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1), lines[li])
        files[name] = b"\n".join(lines)
    elif kind == 8:  # remove a file
        del files[name]
    elif kind == 9 and b:  # flip a bit
        p = rng.randrange(len(b))
        files[name] = b[:p] + bytes([b[p] ^ (1 << rng.randrange(8))]) + b[p + 1 :]
    elif kind == 10:  # a control character inside an id-like token
        li = rng.randrange(len(lines))
        ln = lines[li]
        p = rng.randrange(len(ln) + 1)
        lines[li] = ln[:p] + rng.choice([b"\x00", b"\x01", b"\x1b", b"\x7f", b"\x0b", b"\x0c"]) + ln[p:]
        files[name] = b"\n".join(lines)
    elif kind == 11:  # blank lines and trailing whitespace
        li = rng.randrange(len(lines) + 1)
        lines.insert(li, rng.choice([b"", b" ", b"\t", b"\t\t\t"]))
        files[name] = b"\n".join(lines)
    elif kind == 12:  # a quote somewhere
        p = rng.randrange(len(b) + 1)
        files[name] = b[:p] + b'"' + b[p:]
    else:  # invalid UTF-8 / BOM
        files[name] = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b""]) + b + rng.choice([b"", b"\xc3", b"\xff"])
    return name


def _mutate_parquet(df: pd.DataFrame, rng: random.Random) -> tuple[pd.DataFrame | None, pa.Table | None]:
    df = df.copy()
    if df.empty or not len(df.columns):
        return df, None
    kind = rng.randrange(10)
    col = rng.choice(list(df.columns))
    row = rng.randrange(len(df))
    if kind == 0:  # binary ids
        tbl = pa.Table.from_pandas(df, preserve_index=False)
        have = [c for c in ("user_id", "item_id") if c in tbl.column_names]
        if not have:
            return df, None
        i = tbl.column_names.index(rng.choice(have))
        vals = [None if v is None else str(v).encode() for v in tbl.column(i).to_pylist()]
        return None, tbl.set_column(i, tbl.column_names[i], pa.array(vals, pa.binary()))
    ids = [c for c in ("user_id", "item_id") if c in df.columns] or [col]
    nums = [c for c in ("rating", "timestamp") if c in df.columns] or [col]
    if kind == 1:  # null / empty / control-char / NUL ids
        c = rng.choice(ids)
        df[c] = df[c].astype(object)
        df.loc[row, c] = rng.choice([None, "", " ", "u1\x00", "\x00", "a\x01", "u1 "])
    elif kind == 2:  # non-finite numbers
        c = rng.choice(nums)
        # an earlier mutation may have made the column text ("abc", ""): coerce, do not crash
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(np.float64)
        df.loc[row, c] = rng.choice([np.inf, -np.inf, np.nan, 1e308])
    elif kind == 3:  # drop a column
        df = df.drop(columns=[col])
    elif kind == 4:  # rename a column
        df = df.rename(columns={col: col + "x"})
    elif kind == 5:  # wrong type for a number column
        c = rng.choice(nums)
        df[c] = df[c].astype(str)
        df.loc[row, c] = rng.choice(["abc", "", "inf", "1e309", "2020-01-01"])
    elif kind == 6:  # empty table
        df = df.iloc[:0]
    elif kind == 7:  # float ids with NaN, int ids
        c = rng.choice(ids)
        df[c] = np.arange(len(df), dtype=np.float64)
        if rng.random() < 0.5:
            df.loc[row, c] = np.nan
    elif kind == 8:  # list / struct valued column
        tbl = pa.Table.from_pandas(df, preserve_index=False)
        i = tbl.column_names.index(col)
        return None, tbl.set_column(i, col, pa.array([[1, 2]] * len(df)))
    else:  # bool ids / timestamps
        df[col] = [bool(k % 2) for k in range(len(df))]
    return df, None


def _saved_seed(folder: Path) -> None:
    from fusionrec.data import load_atomic

    src = folder.parent / (folder.name + "-src")
    src.mkdir()
    for n, b in seed_files("atomic").items():
        (src / n).write_bytes(b)
    load_atomic(src).save(folder)
    shutil.rmtree(src)


def _mutate_saved(folder: Path, rng: random.Random) -> None:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        return
    p = rng.choice(files)
    kind = rng.randrange(8)
    b = p.read_bytes()
    if kind == 0:
        p.write_bytes(b[: rng.randrange(len(b) + 1)])
    elif kind == 1:
        p.unlink()
    elif kind == 2 and b:
        k = rng.randrange(len(b))
        p.write_bytes(b[:k] + bytes([b[k] ^ 0xFF]) + b[k + 1 :])
    elif kind in (3, 5, 7):
        try:
            _mutate_saved_content(folder, rng, kind)
        except Exception:  # noqa: BLE001 - an earlier mutation broke the file: leave it so
            p.write_bytes(b[: len(b) // 2])
    elif kind == 4:
        (folder / "meta.json").write_text(rng.choice(["", "[]", "{", "null", '"x"', "1"]))
    elif kind == 6:  # swap two files' contents
        q = rng.choice(files)
        bq = q.read_bytes()
        p.write_bytes(bq)
        q.write_bytes(b)


def _mutate_saved_content(folder: Path, rng: random.Random, kind: int) -> None:
    if kind == 3:  # meta.json with wrong shapes
        meta = json.loads((folder / "meta.json").read_text())
        key = rng.choice(sorted(meta))
        meta[key] = rng.choice([None, 7, "x", [], {}, ["nope"], {"a": "token"}])
        (folder / "meta.json").write_text(json.dumps(meta))
    elif kind == 5:  # interactions naming unknown ids / broken values
        df = pd.read_parquet(folder / "interactions.parquet")
        c = rng.choice(list(df.columns))
        row = rng.randrange(len(df))
        if c in ("rating", "timestamp"):
            df.loc[row, c] = rng.choice([np.inf, -np.inf])
        else:
            df[c] = df[c].astype(str)  # saved as a dictionary column (Categorical in pandas)
            df.loc[row, c] = rng.choice(["nobody", "", "1\x00"])
        df.to_parquet(folder / "interactions.parquet", index=False)
    else:  # duplicate ids in the user/item table
        t = rng.choice(["users.parquet", "items.parquet"])
        if (folder / t).exists():
            df = pd.read_parquet(folder / t)
            pd.concat([df, df.iloc[:1]]).to_parquet(folder / t, index=False)


# ------------------------------------------------------------------------- cases
@dataclass
class Case:
    fmt: str
    seed: int
    target: Path  # what load_dataset is called on
    text_files: dict[str, bytes]  # the text files it holds (for the control-byte check)


def write_case(fmt: str, seed: int, root: Path) -> Case:
    """Write case ``seed`` of format ``fmt`` under ``root`` (mutation count 1-3)."""
    rng = random.Random(f"{fmt}-{seed}")
    n_mut = rng.randint(1, 3)
    folder = root / f"{fmt}-{seed}"
    folder.mkdir(parents=True)
    if fmt == "parquet":
        df: pd.DataFrame | None = _parquet_table()
        tbl = None
        for _ in range(n_mut):
            if df is None:
                break
            df, tbl = _mutate_parquet(df, rng)
        path = folder / "interactions.parquet"
        if tbl is not None:
            pq.write_table(tbl, path)
        else:
            assert df is not None
            try:
                df.to_parquet(path, index=False)
            except (pa.ArrowException, TypeError, ValueError):  # mixed types after two mutations
                df.astype(str).to_parquet(path, index=False)
        if rng.random() < 0.2:  # byte damage on top
            b = path.read_bytes()
            path.write_bytes(b[: rng.randrange(len(b))])
        return Case(fmt, seed, path, {})
    if fmt == "saved":
        target = folder / "ds"
        _saved_seed(target)
        if rng.random() < 0.5:  # as written by an older version: the parser alone must cope
            (target / "manifest.json").unlink(missing_ok=True)
        for _ in range(n_mut):
            _mutate_saved(target, rng)
        return Case(fmt, seed, target, {})
    files = seed_files(fmt)
    for _ in range(n_mut):
        if files:
            _mutate_text(files, rng)
    for n, b in files.items():
        (folder / n).write_bytes(b)
    target = folder / "interactions.csv" if fmt == "csv" else folder
    return Case(fmt, seed, target, files)


def _bad_string(s: object) -> str | None:
    if not isinstance(s, str):
        return f"non-string id {s!r}"
    if s == "" or s.strip() != s:
        return f"empty or padded id {s!r}"
    if any(ord(c) < 32 or ord(c) == 127 for c in s):
        return f"control character in id {s!r}"
    return None


def oracle(case: Case, ds: object) -> str | None:
    """Why a loaded dataset is broken (None when it is sound)."""
    from fusionrec.data import Dataset
    from fusionrec.data.validation import validate_dataset
    from fusionrec.errors import FusionRecError

    if not isinstance(ds, Dataset):
        return f"loader returned {type(ds).__name__}"
    try:
        validate_dataset(ds)
    except FusionRecError as e:
        return f"validate_dataset: {e}"
    for side in (ds.users, ds.items):
        for s in side.ids.tolist():
            why = _bad_string(s)
            if why:
                return why
    for name in ("rating", "timestamp"):
        a = getattr(ds, name)
        if a is not None and np.isinf(a).any():
            return f"infinite {name}"
    if ds.n_interactions == 0:
        return "no interactions"
    for n, b in case.text_files.items():
        body = b[3:] if b.startswith(b"\xef\xbb\xbf") else b
        arr = np.frombuffer(body, np.uint8)
        ctrl = ((arr < 32) & (arr != 9) & (arr != 10) & (arr != 13)) | (arr == 127)
        if ctrl.any():
            return f"accepted a control byte in {n}"
        lone_cr = (arr == 13) & (np.r_[arr[1:], 0] != 10)
        if lone_cr.any():
            return f"accepted a lone CR in {n}"
    return None


def run_case(case: Case, cache: Path | None = None) -> tuple[str, str]:
    """(outcome, detail) with outcome one of ok, rejected, crash, silent."""
    from fusionrec.data import load_dataset
    from fusionrec.errors import FusionRecError

    try:
        ds = load_dataset(case.target)
    except FusionRecError as e:
        msg = str(e)
        names = {case.target.name, case.target.parent.name, *case.text_files}
        names |= {p.name for p in case.target.parent.rglob("*")}
        if not any(n and n in msg for n in names):
            return "crash", f"error names no file of the case: {msg}"
        return "rejected", msg
    except Exception as e:  # noqa: BLE001 - classifying every failure is the point
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        return "crash", tb
    why = oracle(case, ds)
    if why:
        return "silent", why
    if case.fmt in ("csv", "parquet"):  # the fast (pyarrow) reader must agree with the strict one
        why = _same_as_strict(case, ds)
        if why:
            return "silent", why
    return "ok", ""


def _same_as_strict(case: Case, ds: object) -> str | None:
    import inspect

    from fusionrec.data import load_table
    from fusionrec.errors import FusionRecError

    if "engine" not in inspect.signature(load_table).parameters:  # a version with one reader
        return None
    try:
        ref = load_table(case.target, engine="strict")
    except FusionRecError as e:
        return f"fast reader accepted what the strict one refuses: {e}"
    for a, b, what in (
        (ds.users.ids[ds.user_idx], ref.users.ids[ref.user_idx], "user ids"),  # type: ignore[attr-defined]
        (ds.items.ids[ds.item_idx], ref.items.ids[ref.item_idx], "item ids"),  # type: ignore[attr-defined]
        (ds.rating, ref.rating, "ratings"),  # type: ignore[attr-defined]
        (ds.timestamp, ref.timestamp, "timestamps"),  # type: ignore[attr-defined]
    ):
        nan_ok = a is not None and a.dtype.kind == "f"
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b, equal_nan=nan_ok)):
            return f"fast and strict readers differ in {what}"
    return None


def run_many(
    n_per_format: int, root: Path, formats: tuple[str, ...] = FORMATS, start: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Run cases ``start..start+n`` of each format; counts per format and outcome."""
    out: dict[str, dict[str, int]] = {}
    for fmt in formats:
        counts = dict.fromkeys(("ok", "rejected", "crash", "silent"), 0)
        for s in range(start, start + n_per_format):
            case = write_case(fmt, s, root)
            outcome, detail = run_case(case)
            counts[outcome] += 1
            if log and outcome in ("crash", "silent"):
                log(f"{fmt} case {s}: {outcome}: {detail}")
            shutil.rmtree(root / f"{fmt}-{s}", ignore_errors=True)
        out[fmt] = counts
    return out


if __name__ == "__main__":  # pragma: no cover - the figures for the report
    import logging
    import tempfile

    logging.disable(logging.WARNING)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    buf = io.StringIO()
    with tempfile.TemporaryDirectory() as d:
        res = run_many(n, Path(d), log=lambda s: print(s, file=buf))
    print(buf.getvalue()[-6000:])
    tot = dict.fromkeys(("ok", "rejected", "crash", "silent"), 0)
    for fmt, c in res.items():
        print(f"{fmt:8s} " + " ".join(f"{k}={v}" for k, v in c.items()))
        for k, v in c.items():
            tot[k] += v
    print("total    " + " ".join(f"{k}={v}" for k, v in tot.items()), f"cases={sum(tot.values())}")
