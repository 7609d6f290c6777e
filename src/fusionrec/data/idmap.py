"""Bidirectional map between external ids (strings) and dense indices 0..n-1."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

from fusionrec.errors import UnknownIdError

__all__ = ["IdMap"]


def _as_str_array(values: Iterable[object]) -> np.ndarray:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    if arr.dtype.kind in "fc":  # 1.0 -> "1" so float-parsed ids round-trip
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
    return arr.astype(str)


class IdMap:
    """Immutable map of external ids (kept as strings, like RecBole tokens) to indices.

    Index order is the order ids were given (first appearance), so a map built from a file
    is reproducible.
    """

    __slots__ = ("_ids", "_index", "name")

    def __init__(self, ids: Sequence[object] | np.ndarray, name: str = "id") -> None:
        arr = _as_str_array(ids)
        index: dict[str, int] = {}
        for i, v in enumerate(arr.tolist()):
            if v in index:
                raise ValueError(f"duplicate {name} {v!r} in IdMap")
            index[v] = i
        arr.setflags(write=False)
        self._ids = arr
        self._index = index
        self.name = name

    @classmethod
    def from_values(cls, values: Iterable[object], name: str = "id") -> IdMap:
        """Build from values that may repeat, keeping first-appearance order."""
        arr = _as_str_array(values)
        _, first = np.unique(arr, return_index=True)
        return cls(arr[np.sort(first)], name=name)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._index

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
        out = []
        get = self._index.get
        for k in _as_str_array(keys).tolist():
            i = get(k, -1)
            if i < 0 and unknown == "raise":
                raise UnknownIdError(f"unknown {self.name} {k!r}")
            out.append(i)
        return np.asarray(out, dtype=np.int64)

    def to_ids(self, idx: np.ndarray | Sequence[int]) -> np.ndarray:
        return self._ids[np.asarray(idx, dtype=np.int64)]

    def extend(self, new_ids: Iterable[object]) -> IdMap:
        """A new map with unseen ids appended (existing indices unchanged)."""
        extra = [v for v in _as_str_array(new_ids).tolist() if v not in self._index]
        extra = list(dict.fromkeys(extra))
        return IdMap(np.concatenate([self._ids, np.asarray(extra, dtype=str)]) if extra else self._ids, self.name)
