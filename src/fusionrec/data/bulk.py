"""Interaction tables at scale (tens of millions of rows): pyarrow reading, dictionary ids.

:func:`read_interactions_fast` reads a CSV or Parquet table with pyarrow's multi-threaded
reader and turns the id columns into dense indices with ``dictionary_encode`` (first-
appearance order, the same indices the strict path gives), so no Python string is made per
row. Every check the strict reader does is done here on whole columns (ids on their unique
values); anything unusual (a parse error, a bad value, dates as timestamps, odd column types)
raises :class:`FastPathMiss` and the caller re-reads the file with the strict, line-accurate
reader, which either names the line or accepts the file on its own terms.

Measured on this machine (2 cores, benchmarks/scale_data.py): see docs/scale.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fusionrec.data.idmap import IdMap
from fusionrec.data.validation import CONTROL_PATTERN

__all__ = ["FastPathMiss", "read_interactions_fast", "write_interactions", "scan_control_file"]

_CHUNK = 1 << 26


class FastPathMiss(Exception):
    """The fast reader met something only the strict reader reports well (internal signal)."""


#: every byte except the C0 controls, DEL and CR, minus TAB and LF (which are fine)
_NOT_SUSPECT = bytes(b for b in range(256) if not (b < 32 or b == 127) or b in (9, 10))


def scan_control_file(path: Path) -> None:
    """Raise FastPathMiss when the file holds a control byte or lone CR (read in 64 MB chunks).

    ``bytes.translate`` deletes every harmless byte at memory speed; what is left is only
    control bytes and CRs, usually nothing.
    """
    with open(path, "rb") as f:
        tail = b""
        while chunk := f.read(_CHUNK):
            left = chunk.translate(None, _NOT_SUSPECT)
            if left and left.strip(b"\r"):
                raise FastPathMiss("control byte")
            if left or tail:
                data = tail + chunk
                # a CR at the very end may meet its LF in the next chunk
                body = data[:-1] if data.endswith(b"\r") else data
                if body.count(b"\r") != body.count(b"\r\n"):
                    raise FastPathMiss("lone CR")
                tail = b"\r" if data.endswith(b"\r") else b""
        if tail:
            raise FastPathMiss("lone CR at end")


def _open_progress(path: Path, progress: bool):  # noqa: ANN202 - a file-like object
    f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if not progress:
        return f
    from tqdm.auto import tqdm

    return tqdm.wrapattr(
        f, "read", total=path.stat().st_size, desc=f"reading {path.name}", unit="B",
        unit_scale=True, unit_divisor=1024, leave=False,
    )  # fmt: skip


def _read_arrow(
    path: Path, sep: str, id_cols: list[str], progress: bool, num_cols: tuple[str, ...] = ()
) -> pa.Table:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path)
        if len(sep) != 1:
            raise FastPathMiss("multi-character separator")
        scan_control_file(path)
        with _open_progress(path, progress) as f:
            return pacsv.read_csv(
                f,
                parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=False),
                convert_options=pacsv.ConvertOptions(
                    # numbers parsed as float64 explicitly: type inference would read
                    # '0x10' as the integer 16, which the strict reader refuses
                    column_types={**dict.fromkeys(num_cols, pa.float64()), **dict.fromkeys(id_cols, pa.string())},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
                read_options=pacsv.ReadOptions(block_size=1 << 24),
            )
    except FastPathMiss:
        raise
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... : the strict path says where
        raise FastPathMiss(str(e)) from None


def _ids(col: pa.ChunkedArray, name: str) -> tuple[IdMap, np.ndarray]:
    t = col.type
    if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
        # already encoded (our own saves and writes): renumber the codes in first-appearance
        # order with an integer factorize instead of hashing every string again
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if arr.null_count:
            raise FastPathMiss("null id")
        codes, used = pd.factorize(arr.indices.to_numpy(zero_copy_only=False))
        return _finish_ids(arr.dictionary.take(pa.array(used)), codes.astype(np.int64), name)
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_integer(t):
        col = col.cast(pa.string())
    elif not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise FastPathMiss(f"{name} column of type {t}")
    if col.null_count:
        raise FastPathMiss("null id")
    enc = pc.dictionary_encode(col).combine_chunks()
    return _finish_ids(enc.dictionary, enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), name)


def _finish_ids(uniq: pa.Array, idx: np.ndarray, name: str) -> tuple[IdMap, np.ndarray]:
    """Check the distinct ids (empty, control characters), strip blanks, build the IdMap."""
    stripped = pc.utf8_trim_whitespace(uniq)
    if pc.any(pc.equal(pc.utf8_length(stripped), 0)).as_py():
        raise FastPathMiss("empty id")
    if pc.any(pc.match_substring_regex(stripped, CONTROL_PATTERN)).as_py():
        raise FastPathMiss("control character in an id")
    values = np.asarray(stripped.to_pylist(), dtype=object)
    if not pc.all(pc.equal(stripped, uniq)).as_py():  # " u1" and "u1" are one id, as in the strict path
        codes, firsts = pd.factorize(values)
        idx = codes[idx]
        values = firsts
    return IdMap(values, name=name), idx


def _numbers(col: pa.ChunkedArray, name: str) -> np.ndarray:
    t = col.type
    if not (pa.types.is_floating(t) or pa.types.is_integer(t)) or pa.types.is_boolean(t):
        raise FastPathMiss(f"{name} of type {t}")
    a = col.cast(pa.float64()).to_numpy()
    if np.isinf(a).any():
        raise FastPathMiss(f"infinite {name}")
    return np.ascontiguousarray(a)


def read_interactions_fast(
    path: str | os.PathLike,
    columns: Mapping[str, str] | None = None,
    sep: str = ",",
    *,
    progress: bool = False,
) -> dict[str, object]:
    """Read an interaction table into ``users``, ``items`` (IdMaps) and per-row arrays.

    Returns a dict with ``users``, ``items``, ``user_idx``, ``item_idx`` and, when the table has
    them, ``rating`` and ``timestamp`` (float64). Raises :class:`FastPathMiss` whenever the
    strict reader should look at the file instead.
    """
    try:
        return _read_fast(Path(path), dict(columns or {}), sep, progress)
    except (FastPathMiss, MemoryError):
        raise
    except Exception as e:  # undecodable header, odd Arrow types...: the strict reader says where
        raise FastPathMiss(f"{type(e).__name__}: {e}") from None


def _read_fast(path: Path, columns: dict[str, str], sep: str, progress: bool) -> dict[str, object]:
    names = {c: columns.get(c, c) for c in ("user_id", "item_id", "rating", "timestamp")}
    table = _read_arrow(
        path, sep, [names["user_id"], names["item_id"]], progress, (names["rating"], names["timestamp"])
    )
    have = table.column_names
    if len(set(have)) != len(have) or table.num_rows == 0:
        raise FastPathMiss("duplicate column names or no rows")
    out: dict[str, object] = {}
    for canon, src in names.items():
        if src not in have:
            if canon in ("user_id", "item_id") or canon in columns:
                raise FastPathMiss(f"no column {src}")
            continue
        col = table.column(src)
        if canon in ("user_id", "item_id"):
            m, idx = _ids(col, canon.split("_")[0])  # type: ignore[misc]
            out["users" if canon == "user_id" else "items"] = m
            out[canon.replace("_id", "_idx")] = idx
        else:
            out[canon] = _numbers(col, canon)
    del table
    return out


def write_interactions(ds: object, path: str | os.PathLike) -> Path:
    """Write a Dataset's interactions (external ids) as CSV or Parquet by suffix, through pyarrow."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    cols = {
        "user_id": pa.DictionaryArray.from_arrays(pa.array(ds.user_idx.astype(np.int32)), pa.array(ds.users.ids)),  # type: ignore[attr-defined]
        "item_id": pa.DictionaryArray.from_arrays(pa.array(ds.item_idx.astype(np.int32)), pa.array(ds.items.ids)),  # type: ignore[attr-defined]
    }
    for name in ("rating", "timestamp"):
        a = getattr(ds, name)
        if a is not None:
            whole = name == "timestamp" and np.all(np.isfinite(a)) and np.all(a == np.round(a))
            cols[name] = pa.array(a.astype(np.int64) if whole else a)
    table = pa.table(cols)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        pq.write_table(table, tmp)
    else:
        plain = pa.table(
            {
                k: (v.cast(pa.string()) if pa.types.is_dictionary(v.type) else v)
                for k, v in zip(table.column_names, table.columns, strict=True)
            }
        )
        special = "[,\"\r\n]"
        safe = not any(
            pc.any(pc.match_substring_regex(pa.array(m.ids), special)).as_py()
            for m in (ds.users, ds.items)  # type: ignore[attr-defined]
        )
        style = "none" if safe else "needed"  # unquoted like MovieLens' ratings.csv when ids allow
        pacsv.write_csv(plain, tmp, write_options=pacsv.WriteOptions(quoting_style=style))
    os.replace(tmp, path)  # atomic on one file system
    return path
