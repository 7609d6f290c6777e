"""A thread-safe LRU cache of recent answers, invalidated per user and wholesale on reload."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["AnswerCache"]


class AnswerCache:
    """LRU map ``key -> answer``; every key belongs to one user so feedback can drop that user's entries."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, tuple[str, Any]] = OrderedDict()
        self._by_user: dict[str, set[Hashable]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            self._data.move_to_end(key)
            return hit[1]

    def put(self, user: str, key: Hashable, value: Any) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = (user, value)
            self._data.move_to_end(key)
            self._by_user.setdefault(user, set()).add(key)
            while len(self._data) > self.maxsize:
                old, (u, _) = self._data.popitem(last=False)
                keys = self._by_user.get(u)
                if keys is not None:
                    keys.discard(old)
                    if not keys:
                        del self._by_user[u]

    def invalidate_user(self, user: str) -> int:
        """Drop every answer cached for ``user``; returns how many."""
        with self._lock:
            keys = self._by_user.pop(user, set())
            for k in keys:
                self._data.pop(k, None)
            return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._by_user.clear()

    def __len__(self) -> int:
        return len(self._data)
