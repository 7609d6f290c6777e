"""Bidirectional map between external ids (strings) and dense indices 0..n-1."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from fusionrec.errors import UnknownIdError

__all__ = ["IdMap"]


def _keys(values: Iterable[object]) -> np.ndarray:
    """Ids as an array of strings without loss: Python strings stay objects.

    numpy's fixed-width strings drop trailing NULs (``"196\\0"`` would become ``"196"``, another
    id), so an object array of ``str`` is kept as it is; numbers become their text (whole
    floats as integers, so float-parsed ids round-trip).
    """
    if isinstance(values, np.ndarray):
        arr = values
    else:
        vals = list(values)
        arr = np.empty(len(vals), dtype=object)
        arr[:] = vals
    if arr.dtype == object:
        if all(isinstance(v, str) for v in arr.tolist()):
            return arr
        arr = np.asarray(arr.tolist())
    if arr.dtype.kind in "fc":
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
    return arr.astype(str)


def _as_str_array(values: Iterable[object], name: str = "id") -> np.ndarray:
    """Ids as a fixed-width string array; an id holding NUL is refused (it cannot be stored)."""
    arr = _keys(values)
    if arr.dtype == object and len(arr):
        if pd.Series(arr, dtype=object).str.contains("\x00", regex=False).any():
            raise ValueError(f"{name} id contains the NUL character (ids may not hold control characters)")
        try:  # ids are stored as UTF-8 (Parquet, safetensors metadata, the event store)
            "".join(arr.tolist()).encode("utf-8")
        except UnicodeEncodeError:
            bad = next(v for v in arr.tolist() if not _utf8(v))
            raise ValueError(f"{name} id {bad!r} is not valid Unicode text (a lone surrogate cannot be stored as UTF-8)") from None
    return arr.astype(str)


def _utf8(v: str) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class IdMap:
    """Immutable map of external ids (kept as strings, like RecBole tokens) to indices.

    Index order is the order ids were given (first appearance), so a map built from a file
    is reproducible.
    """

    __slots__ = ("_ids", "_index", "_pindex", "name")

    def __init__(self, ids: Sequence[object] | np.ndarray, name: str = "id") -> None:
        arr = _as_str_array(ids, name)
        index: dict[str, int] = {}
        for i, v in enumerate(arr.tolist()):
            if v in index:
                raise ValueError(f"duplicate {name} {v!r} in IdMap")
            index[v] = i
        arr.setflags(write=False)
        self._ids = arr
        self._index = index
        self._pindex: pd.Index | None = None
        self.name = name

    @classmethod
    def from_values(cls, values: Iterable[object], name: str = "id") -> IdMap:
        """Build from values that may repeat, keeping first-appearance order."""
        return cls(pd.unique(_keys(values)), name=name)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._index

    def _lookup(self) -> pd.Index:
        if self._pindex is None:
            self._pindex = pd.Index(self._ids.astype(object))
        return self._pindex

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:  # pragma: no cover - maps are compared by value, hashing unused
        return hash((len(self), self._ids[:1].tobytes()))

    def __repr__(self) -> str:
        return f"IdMap({self.name}, n={len(self)})"

    @property
    def ids(self) -> np.ndarray:
        """External ids as a read-only string array, position = index."""
        return self._ids

    def index(self, key: object) -> int:
        try:
            return self._index[str(key)]
        except KeyError:
            raise UnknownIdError(f"unknown {self.name} {key!r}") from None

    def to_idx(
        self, keys: Iterable[object], unknown: Literal["raise", "mask"] = "raise"
    ) -> np.ndarray:
        """Map external ids to indices; with ``unknown="mask"`` unknown ids become -1."""
        k = _keys(keys)
        # a hash lookup in C (pandas): 25M keys in seconds, where a Python loop takes a minute
        out = self._lookup().get_indexer(k.astype(object)).astype(np.int64)
        if unknown == "raise" and len(out) and out.min() < 0:
            raise UnknownIdError(f"unknown {self.name} {k[int(np.flatnonzero(out < 0)[0])]!r}")
        return out

    def to_ids(self, idx: np.ndarray | Sequence[int]) -> np.ndarray:
        return self._ids[np.asarray(idx, dtype=np.int64)]

    def extend(self, new_ids: Iterable[object]) -> IdMap:
        """A new map with unseen ids appended (existing indices unchanged)."""
        extra = [v for v in _as_str_array(new_ids, self.name).tolist() if v not in self._index]
        extra = list(dict.fromkeys(extra))
        return IdMap(np.concatenate([self._ids, np.asarray(extra, dtype=str)]) if extra else self._ids, self.name)
