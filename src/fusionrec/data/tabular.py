"""Interactions from a CSV/TSV or Parquet table with a column mapping."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fusionrec.data._textio import DelimitedText, read_csv_strict, to_float
from fusionrec.data.dataset import Dataset
from fusionrec.data.validation import check_finite, check_ids
from fusionrec.errors import DataFormatError

__all__ = ["load_table", "read_table"]

_CANONICAL = ("user_id", "item_id", "rating", "timestamp")
log = logging.getLogger(__name__)


def read_table(path: str | os.PathLike, sep: str = ",") -> DelimitedText:
    """Read a CSV (``sep``-separated, quoted, with header) or Parquet file; values of CSVs are strings."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, None, "file not found")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for a bad file
            raise DataFormatError(path, None, f"not a readable Parquet file: {e}") from None
        _check_parquet_columns(path, frame)
        # parquet has no lines; report row numbers as "line" = row + 1
        return DelimitedText(
            path, [str(c) for c in frame.columns], frame, np.arange(len(frame)) + 1
        )
    return read_csv_strict(path, sep=sep)


def _check_parquet_columns(path: Path, frame: pd.DataFrame) -> None:
    """Refuse column types no loader step can use: binary, nested (list/struct/map) values."""
    for c in frame.columns:
        col = frame[c]
        if col.dtype != object or not len(col):
            continue
        kinds = {type(v) for v in col.dropna().head(1000).tolist()}
        kinds |= {type(v) for v in col.dropna().tail(1000).tolist()}
        odd = sorted(k.__name__ for k in kinds if not issubclass(k, (str, int, float, np.number)))
        if odd:
            what = "binary" if "bytes" in odd else f"nested ({', '.join(odd)})"
            raise DataFormatError(
                path, None, f"column {c!r} holds {what} values; expected text or numbers"
            )


def _numbers(col: pd.Series, src: DelimitedText, field: str) -> np.ndarray:
    """A float column (bool refused), with infinities named by line."""
    if pd.api.types.is_bool_dtype(col):
        raise DataFormatError(src.path, None, f"column {field!r} holds booleans; expected numbers")
    if pd.api.types.is_numeric_dtype(col):
        out = col.to_numpy(np.float64, na_value=np.nan)
        check_finite(out, path=src.path, field=field, line_of=src.line_of)
        return out
    return to_float(col, src, field)


def _timestamp(col: pd.Series, src: DelimitedText) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(col):
        return (col.astype("datetime64[ns]").astype("int64") // 10**9).to_numpy(np.float64)
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return _numbers(col, src, "timestamp")
    s = col.astype(str).str.strip()
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all() or (num.isna() & (s != "")).sum() == 0:
        out = num.to_numpy(np.float64)
        check_finite(out, path=src.path, field="timestamp", line_of=src.line_of, raw=s)
        return out
    dt = pd.to_datetime(s.where(s != "", None), errors="coerce", utc=True, format="mixed")
    bad = dt.isna().to_numpy() & (s != "").to_numpy()
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            src.path,
            src.line_of(r),
            f"field 'timestamp': expected a number or a date, got {s.iloc[r]!r}",
        )
    return (dt.astype("datetime64[ns, UTC]").astype("int64") // 10**9).to_numpy(np.float64)


def _ids(values: pd.Series, src: DelimitedText, canon: str, col: str) -> np.ndarray:
    """String ids: integers kept as integers, whole floats as integers, blanks stripped."""
    if pd.api.types.is_bool_dtype(values):
        raise DataFormatError(src.path, None, f"column {col!r} holds booleans; expected ids")
    empty = values.isna().to_numpy()
    r = int(np.flatnonzero(empty)[0]) if empty.any() else None
    if r is not None:
        raise DataFormatError(src.path, src.line_of(r), f"empty {canon} in column {col!r}")
    if pd.api.types.is_float_dtype(values):
        f = values.to_numpy(np.float64)
        frac = f != np.round(f)
        if frac.any() or np.isinf(f).any():
            r = int(np.flatnonzero(frac | np.isinf(f))[0])
            raise DataFormatError(
                src.path, src.line_of(r), f"{canon} {float(f[r])!r} in column {col!r} is not a whole number"
            )
        values = pd.Series(f.astype(np.int64))
    s = values.astype(str).str.strip()
    if (s == "").any():
        r = int(np.flatnonzero((s == "").to_numpy())[0])
        raise DataFormatError(src.path, src.line_of(r), f"empty {canon} in column {col!r}")
    check_ids(s, path=src.path, field=canon, line_of=src.line_of)
    return s.to_numpy(dtype=object)


def _side_table(
    table: pd.DataFrame | str | os.PathLike | None, id_col: str, source_col: str, sep: str
) -> pd.DataFrame | None:
    if table is None:
        return None
    if isinstance(table, pd.DataFrame):
        df, where = table.copy(), f"{id_col.split('_')[0]} table"
    else:
        df, where = read_table(table, sep=sep).frame, Path(table)
    if id_col not in df.columns:
        if source_col in df.columns:
            df = df.rename(columns={source_col: id_col})
        else:
            raise DataFormatError(
                where, None, f"no id column {id_col!r} or {source_col!r} (have {list(df.columns)})"
            )
    df[id_col] = df[id_col].astype(str)
    return df


def load_table(
    path: str | os.PathLike,
    columns: Mapping[str, str] | None = None,
    items: pd.DataFrame | str | os.PathLike | None = None,
    users: pd.DataFrame | str | os.PathLike | None = None,
    sep: str = ",",
    name: str | None = None,
    *,
    engine: Literal["auto", "fast", "strict"] = "auto",
    progress: bool = False,
) -> Dataset:
    """Load interactions from a CSV/TSV/Parquet table.

    Args:
        path: the table (``.parquet``/``.pq`` read as Parquet, anything else as ``sep``-separated text
            with a header line).
        columns: maps our names (``user_id``, ``item_id``, optional ``rating``, ``timestamp``)
            to the table's column names, e.g. ``{"user_id": "uid", "item_id": "iid"}``. Names not
            mapped are looked up as themselves; ``rating``/``timestamp`` are optional.
        items, users: optional side tables (DataFrame or file path) with an ``item_id``/``user_id``
            column (or the mapped source name) plus feature columns.
        sep: separator of text files.
        name: dataset name (default: the file stem).

    Ids are kept as strings. Timestamps may be numbers or dates (converted to Unix seconds).

    ``engine="auto"`` reads the interaction table through pyarrow
    (:mod:`fusionrec.data.bulk`: multi-threaded, no Python object per row, 25M rows in under a
    minute) and falls back to the strict reader whenever that meets anything unusual, so errors
    still name the line; ``"strict"`` always uses the strict reader, ``"fast"`` never falls back
    (its errors then name no line). ``progress`` shows a bar while a CSV is read.

    Raises:
        DataFormatError: naming the file (and line) for a missing column, a short line or a bad number.
    """
    path = Path(path)
    columns = dict(columns or {})
    unknown = set(columns) - set(_CANONICAL)
    if unknown:
        raise DataFormatError(
            path,
            None,
            f"unknown target column(s) {sorted(unknown)} in the mapping; use {', '.join(_CANONICAL)}",
        )
    if engine not in ("auto", "fast", "strict"):
        raise ValueError(f"engine must be 'auto', 'fast' or 'strict', got {engine!r}")
    if engine != "strict":
        from fusionrec.data.bulk import FastPathMiss, read_interactions_fast

        if not path.exists():
            raise DataFormatError(path, None, "file not found")
        try:
            parts = read_interactions_fast(path, columns, sep=sep, progress=progress)
        except FastPathMiss as e:
            if engine == "fast":
                raise DataFormatError(path, None, f"cannot read with the fast reader: {e}") from None
            log.debug("%s: fast reader declined (%s); reading strictly", path, e)
        else:
            return Dataset.from_frames(
                parts,
                users=_side_table(users, "user_id", columns.get("user_id", "user_id"), sep),
                items=_side_table(items, "item_id", columns.get("item_id", "item_id"), sep),
                name=name or path.stem,
            )
    src = read_table(path, sep=sep)
    df = src.frame
    have = list(df.columns)
    out: dict[str, object] = {}
    for canon in _CANONICAL:
        col = columns.get(canon, canon)
        if col not in df.columns:
            if canon in columns or canon in ("user_id", "item_id"):
                raise DataFormatError(
                    path,
                    1 if src.header else None,
                    f"no column {col!r} for {canon} (columns: {have})",
                )
            continue
        values = df[col]
        if canon in ("user_id", "item_id"):
            out[canon] = _ids(values, src, canon, col)
        elif canon == "rating":
            out[canon] = _numbers(values, src, col)
        else:
            out[canon] = _timestamp(values, src)
    inter = pd.DataFrame(out)
    if not len(inter):
        raise DataFormatError(path, None, "no interactions (the table is empty)")
    return Dataset.from_frames(
        inter,
        users=_side_table(users, "user_id", columns.get("user_id", "user_id"), sep),
        items=_side_table(items, "item_id", columns.get("item_id", "item_id"), sep),
        name=name or path.stem,
    )
