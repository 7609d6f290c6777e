"""Strict reading of a saved Dataset folder: every damaged file is named, nothing crashes.

Parquet and ``.npy`` readers raise many exception types for damaged files; here each becomes
a :class:`DataFormatError` naming the file, and ``meta.json`` is checked field by field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.errors import DataFormatError

__all__ = [
    "read_meta", "read_parquet", "read_npy", "require_columns", "read_interactions", "interactions_table",
]  # fmt: skip

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_FEATURE_TYPES = ("token", "token_seq", "float", "float_seq")


def read_meta(path: Path, format_version: int) -> dict[str, Any]:
    """``meta.json`` as a dict with the expected keys and types (or a DataFormatError)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFormatError(path, None, f"unreadable JSON: {e}") from None
    if not isinstance(meta, dict):
        raise DataFormatError(path, None, f"expected a JSON object, got {type(meta).__name__}")
    if meta.get("format_version") != format_version:
        raise DataFormatError(
            path, None, f"format_version {meta.get('format_version')!r}, expected {format_version}"
        )
    if not isinstance(meta.get("name"), str):
        raise DataFormatError(path, None, "'name' must be a string")
    for key in ("user_feature_types", "item_feature_types"):
        types = meta.get(key)
        if not isinstance(types, dict) or not all(
            isinstance(k, str) and v in _FEATURE_TYPES for k, v in types.items()
        ):
            raise DataFormatError(
                path, None, f"{key!r} must map column names to one of {', '.join(_FEATURE_TYPES)}"
            )
    for key in ("text_fields", "item_embeddings"):
        v = meta.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise DataFormatError(path, None, f"{key!r} must be a list of strings")
    for k in meta.get("item_embeddings", []):
        if not _SAFE_NAME.match(k) or ".." in k:
            raise DataFormatError(path, None, f"item embedding name {k!r} is not a plain file name")
    return meta


def read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataFormatError(path, None, "file missing from the saved dataset")
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ValueError, ... for damage
        raise DataFormatError(path, None, f"not a readable Parquet file: {e}") from None


def read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataFormatError(path, None, "file missing from the saved dataset")
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError / OSError / EOFError for damaged headers or data
        raise DataFormatError(path, None, f"not a readable .npy array: {e}") from None
    if a.ndim != 2 or a.dtype.kind not in "fiu":
        raise DataFormatError(path, None, f"expected a 2-d number matrix, got {a.dtype} {a.shape}")
    return a


def require_columns(path: Path, df: pd.DataFrame, cols: tuple[str, ...], numeric: tuple[str, ...] = ()) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataFormatError(path, None, f"missing column(s) {missing} (have {list(df.columns)})")
    for c in numeric:
        if c in df.columns and not (
            pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        ):
            raise DataFormatError(path, None, f"column {c!r} must hold numbers, has {df[c].dtype}")


def interactions_table(ds: Any) -> Any:
    """The interactions of a Dataset as an Arrow table with dictionary-encoded id columns.

    Dictionary columns store each id once plus an int32 index per row, so writing 25M rows
    makes no per-row Python string (and the file reads back as plain strings anywhere).
    """
    import pyarrow as pa

    cols = {
        "user_id": pa.DictionaryArray.from_arrays(pa.array(ds.user_idx.astype(np.int32)), pa.array(ds.users.ids)),
        "item_id": pa.DictionaryArray.from_arrays(pa.array(ds.item_idx.astype(np.int32)), pa.array(ds.items.ids)),
    }
    for name in ("rating", "timestamp"):
        a = getattr(ds, name)
        if a is not None:
            cols[name] = pa.array(a)
    return pa.table(cols)


def _column_idx(table: Any, col: str, idmap: Any, path: Path) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = table.column(col)
    if not pa.types.is_dictionary(arr.type):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_integer(arr.type)):
            raise DataFormatError(path, None, f"column {col!r} has type {arr.type}, expected text ids")
        arr = pc.dictionary_encode(arr)
    arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
    if arr.null_count:
        raise DataFormatError(path, None, f"column {col!r} has missing ids")
    dictionary = arr.dictionary
    if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        dictionary = dictionary.cast(pa.string())
    keys = np.asarray(dictionary.to_pylist(), dtype=object)
    mapped = idmap.to_idx(keys, unknown="mask")
    if len(mapped) and mapped.min() < 0:
        bad = keys[int(np.flatnonzero(mapped < 0)[0])]
        raise DataFormatError(path, None, f"names {col.split('_')[0]} {bad!r}, which is not in the id table")
    return mapped[arr.indices.to_numpy(zero_copy_only=False).astype(np.int64)]


def read_interactions(path: Path, users: Any, items: Any) -> dict[str, np.ndarray | None]:
    """user_idx, item_idx, rating, timestamp of a saved ``interactions.parquet`` (through Arrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataFormatError(path, None, "file missing from the saved dataset")
    try:
        table = pq.read_table(path)
    except Exception as e:  # ArrowInvalid, OSError, ... for damaged files
        raise DataFormatError(path, None, f"not a readable Parquet file: {e}") from None
    for c in ("user_id", "item_id"):
        if c not in table.column_names:
            raise DataFormatError(path, None, f"missing column {c!r} (have {table.column_names})")
    out: dict[str, np.ndarray | None] = {
        "user_idx": _column_idx(table, "user_id", users, path),
        "item_idx": _column_idx(table, "item_id", items, path),
    }
    for c in ("rating", "timestamp"):
        if c not in table.column_names:
            out[c] = None
            continue
        t = table.column(c).type
        if not (pa.types.is_floating(t) or pa.types.is_integer(t)):
            raise DataFormatError(path, None, f"column {c!r} must hold numbers, has {t}")
        out[c] = table.column(c).cast(pa.float64()).to_numpy()
    return out
