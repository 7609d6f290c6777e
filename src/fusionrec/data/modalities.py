"""Attach named item modality matrices (text, image, audio embeddings, ...) to a Dataset.

Sources, all keyed by external item id:

- a ``.npy`` matrix (n, d) plus an ids file (``<name>.ids.txt``/``.ids.npy`` next to it, or
  ``ids=``) giving the item id of each row;
- a ``.parquet`` / ``.csv`` table with an ``item_id`` column and either one list-valued
  column (``embedding`` or the only other column) or several numeric columns;
- a DataFrame of the same shape, or an ``(ids, matrix)`` pair.

Items the source does not cover get NaN rows (models treat them as missing); ids unknown
to the dataset are ignored (``unknown="raise"`` refuses them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.errors import DataFormatError

__all__ = ["attach_modality", "read_modality", "modality_mask"]

Source = str | os.PathLike | pd.DataFrame | tuple[np.ndarray, np.ndarray]


def _ids_file(path: Path) -> Path | None:
    stem = path.with_suffix("")
    for cand in (Path(f"{stem}.ids.txt"), Path(f"{stem}.ids.npy"), Path(f"{stem}.ids")):
        if cand.exists():
            return cand
    return None


def _read_ids(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False).astype(str)
    return np.asarray([ln.strip() for ln in path.read_text().splitlines() if ln.strip()], dtype=str)


def _from_frame(df: pd.DataFrame, where: object) -> tuple[np.ndarray, np.ndarray]:
    if "item_id" not in df.columns:
        raise DataFormatError(where, None, f"missing column 'item_id' (have {list(df.columns)})")
    ids = df["item_id"].astype(str).to_numpy()
    rest = [c for c in df.columns if c != "item_id"]
    if not rest:
        raise DataFormatError(where, None, "no embedding column next to 'item_id'")
    vec_col = "embedding" if "embedding" in rest else (rest[0] if len(rest) == 1 else None)
    if (
        vec_col is not None
        and df[vec_col].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all()
    ):
        rows = df[vec_col].tolist()
        dims = {len(v) for v in rows}
        if len(dims) != 1:
            raise DataFormatError(
                where, None, f"column {vec_col!r}: vectors of different lengths {sorted(dims)[:5]}"
            )
        mat = np.asarray([np.asarray(v, dtype=np.float32) for v in rows], dtype=np.float32).reshape(
            len(rows), -1
        )
    else:
        bad = [c for c in rest if not pd.api.types.is_numeric_dtype(df[c])]
        if bad:
            raise DataFormatError(
                where,
                None,
                f"non-numeric embedding column(s) {bad}; expected numbers or one list column",
            )
        mat = df[rest].to_numpy(np.float32)
    return ids, mat


def read_modality(
    source: Source, ids: np.ndarray | list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read a modality source into ``(item_ids, matrix)`` (see the module doc for formats)."""
    if isinstance(source, tuple):
        rid, mat = source
        return np.asarray(rid).astype(str), np.asarray(mat, dtype=np.float32)
    if isinstance(source, pd.DataFrame):
        return _from_frame(source, "modality table")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"modality file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            mat = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise DataFormatError(path, None, f"not a plain numeric .npy array ({e})") from None
        if mat.ndim != 2 or mat.dtype.kind not in "fiu":
            raise DataFormatError(
                path,
                None,
                f"expected a 2-d numeric matrix, got shape {mat.shape} dtype {mat.dtype}",
            )
        if ids is None:
            f = _ids_file(path)
            if f is None:
                raise DataFormatError(
                    path,
                    None,
                    f"no item ids: pass ids= or write {path.with_suffix('')}.ids.txt (one item id per row)",
                )
            ids = _read_ids(f)
        ids = np.asarray(ids).astype(str)
        return ids, mat.astype(np.float32)
    if suffix == ".parquet":
        return _from_frame(pd.read_parquet(path), path)
    if suffix in (".csv", ".tsv"):
        return _from_frame(pd.read_csv(path, sep="\t" if suffix == ".tsv" else ","), path)
    raise DataFormatError(
        path, None, f"unsupported modality file type {suffix!r}; use .npy (+ ids), .parquet or .csv"
    )


def attach_modality(
    ds: Dataset,
    name: str,
    source: Source,
    *,
    ids: np.ndarray | list | None = None,
    unknown: Literal["ignore", "raise"] = "ignore",
) -> Dataset:
    """A new Dataset with item modality ``name`` (an (n_items, d) float32 matrix; NaN rows for
    items the source lacks). The input Dataset is not changed."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"modality name must be alphanumeric (with _ or -), got {name!r}")
    rid, mat = read_modality(source, ids)
    where = source if isinstance(source, (str, os.PathLike)) else f"modality {name!r}"
    if mat.ndim != 2:
        raise DataFormatError(where, None, f"expected a 2-d matrix, got shape {mat.shape}")
    if len(rid) != len(mat):
        raise DataFormatError(where, None, f"{len(rid)} item ids for {len(mat)} rows")
    if len(set(rid.tolist())) != len(rid):
        dup = pd.Series(rid)[pd.Series(rid).duplicated()].iloc[0]
        raise DataFormatError(where, None, f"duplicate item id {dup!r}")
    if not np.isfinite(mat).all():
        bad = int(np.flatnonzero(~np.isfinite(mat).all(1))[0])
        raise DataFormatError(where, bad + 1, f"row for item {rid[bad]!r} has NaN/inf values")
    idx = ds.items.to_idx(rid, unknown="mask")
    if unknown == "raise" and (idx < 0).any():
        raise DataFormatError(
            where, None, f"item id {rid[idx < 0][0]!r} is not in dataset {ds.name!r}"
        )
    full = np.full((ds.n_items, mat.shape[1]), np.nan, dtype=np.float32)
    ok = idx >= 0
    full[idx[ok]] = mat[ok]
    return ds.with_item_embedding(name, full)


def modality_mask(matrix: np.ndarray) -> np.ndarray:
    """Boolean (n_items,) mask: True where the item has a (non-NaN) row."""
    return ~np.isnan(np.asarray(matrix)).any(axis=1)
