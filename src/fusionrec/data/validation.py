"""Checks that loaded data is sound: ids, numbers, index ranges. Vectorised, so cheap at 25M rows.

The loaders call :func:`check_ids` and :func:`check_finite` with the file and line numbers
so a bad value is reported where it is; :func:`validate_dataset` checks a finished
:class:`~fusionrec.data.dataset.Dataset` as a whole (used after loading a saved folder and by
the loader fuzz test).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.errors import DataFormatError

__all__ = ["check_ids", "check_unique", "check_finite", "validate_dataset", "control_bytes", "CONTROL_PATTERN"]

#: C0 control characters and DEL; ids (and text files) must not hold them.
CONTROL_PATTERN = r"[\x00-\x1f\x7f]"


def _where(path: object, line_of: Callable[[int], int] | None, row: int) -> tuple[object, int | None]:
    return path, (line_of(row) if line_of is not None else None)


def check_ids(
    values: np.ndarray | pd.Series,
    *,
    path: str | os.PathLike | object,
    field: str,
    line_of: Callable[[int], int] | None = None,
) -> None:
    """Raise when an id is missing, empty, padded with blanks or holds a control character.

    Works on the unique values first (ids repeat a lot), then finds the first offending row.
    """
    s = pd.Series(values, copy=False)
    if s.isna().any():
        r = int(np.flatnonzero(s.isna().to_numpy())[0])
        raise DataFormatError(*_where(path, line_of, r), f"missing {field}")
    s = s.astype(str)
    uniq = pd.Series(s.unique())
    bad_u = (uniq == "") | (uniq.str.strip() != uniq) | uniq.str.contains(CONTROL_PATTERN, regex=True)
    if not bad_u.any():
        return
    bad_vals = set(uniq[bad_u].tolist())
    r = int(np.flatnonzero(s.isin(bad_vals).to_numpy())[0])
    v = s.iloc[r]
    if v.strip() == "":
        what = f"empty {field}"
    elif v.strip() != v:
        what = f"{field} {v!r} has leading or trailing blanks"
    else:
        what = f"{field} {v!r} contains a control character"
    raise DataFormatError(*_where(path, line_of, r), what)


def check_unique(
    values: np.ndarray | pd.Series,
    *,
    path: str | os.PathLike | object,
    field: str,
    line_of: Callable[[int], int] | None = None,
) -> None:
    """Raise naming the second occurrence of an id that must be listed once."""
    dup = pd.Series(values, copy=False).astype(str).duplicated().to_numpy()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        v = pd.Series(values, copy=False).astype(str).iloc[r]
        raise DataFormatError(*_where(path, line_of, r), f"{field} {v!r} is listed twice")


def check_finite(
    values: np.ndarray,
    *,
    path: str | os.PathLike | object,
    field: str,
    line_of: Callable[[int], int] | None = None,
    raw: pd.Series | None = None,
) -> None:
    """Raise on +-inf (``inf``, ``1e309`` overflow); NaN stays allowed as a missing value."""
    a = np.asarray(values, dtype=np.float64)
    inf = np.isinf(a)
    if inf.any():
        r = int(np.flatnonzero(inf)[0])
        shown = raw.iloc[r] if raw is not None else a[r]
        raise DataFormatError(
            *_where(path, line_of, r), f"field {field!r}: {shown!r} is not a finite number"
        )


def control_bytes(data: np.ndarray) -> np.ndarray:
    """Positions of bytes a text data file must not hold: C0 controls except TAB/LF/CR, DEL, lone CR."""
    bad = ((data < 32) & (data != 9) & (data != 10) & (data != 13)) | (data == 127)
    cr = np.flatnonzero(data == 13)
    if len(cr):
        nxt = np.r_[data, 0][cr + 1]
        bad[cr[nxt != 10]] = True
    return np.flatnonzero(bad)


def validate_dataset(ds: Any, where: object = None) -> None:
    """Raise :class:`DataFormatError` when a Dataset holds broken data.

    Checks: ids (non-empty, no control characters or surrounding blanks, unique), index
    arrays in range, ratings and timestamps without infinities, feature tables of the right
    length, KG indices in range.
    """
    # duck-typed: this module sits below dataset.py (dataset.py imports it)
    if not all(hasattr(ds, a) for a in ("users", "items", "user_idx", "item_idx", "kg")):
        raise TypeError(f"expected a Dataset, got {type(ds).__name__}")
    place = where if where is not None else f"dataset {ds.name!r}"
    for side, m in (("user id", ds.users), ("item id", ds.items)):
        check_ids(m.ids, path=place, field=side)
        if len(np.unique(m.ids)) != len(m.ids):
            raise DataFormatError(place, None, f"duplicate {side} in the id map")
    n = ds.n_interactions
    for nm, idx, size in (("user_idx", ds.user_idx, ds.n_users), ("item_idx", ds.item_idx, ds.n_items)):
        if n and (idx.min() < 0 or idx.max() >= size):
            raise DataFormatError(place, None, f"{nm} out of range 0..{size - 1}")
    for nm in ("rating", "timestamp"):
        a = getattr(ds, nm)
        if a is not None:
            if len(a) != n:
                raise DataFormatError(place, None, f"{nm} has {len(a)} values for {n} interactions")
            check_finite(a, path=place, field=nm)
    if ds.kg is not None:
        ne = len(ds.kg.entities)
        for nm in ("head", "tail"):
            a = getattr(ds.kg, nm)
            if len(a) and (a.min() < 0 or a.max() >= ne):
                raise DataFormatError(place, None, f"KG {nm} index out of range")
        if len(ds.kg.item_entity) != ds.n_items:
            raise DataFormatError(place, None, "KG item->entity link has the wrong length")
