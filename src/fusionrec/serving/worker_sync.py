"""Keep the per-worker caches of ``fusionrec serve --workers N`` coherent with the event store.

Feedback is stored in the shared database (SQLite in WAL mode, or PostgreSQL), so every worker
reads the same events; what is per worker is memory: the answer cache and the feedback-items
cache. A worker that stores an event bumps a 64-bit counter in a small shared file
(:class:`ChangeCounter`, memory-mapped by every worker). Before a worker reads either cache it
compares the counter with the value it last saw (one 8-byte read); when it moved, it reads the
ids of the users with events newer than the last event it has seen and drops their cached
answers and feedback items (:func:`changed_users`).

On SQLite writers are serialised, so event ids become visible in increasing order and
"newer than the last id seen" misses nothing. PostgreSQL may commit a smaller id after a larger
one; there the query re-reads the last ``POSTGRES_LAG`` ids as well.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fusionrec.serving.cache import AnswerCache
from fusionrec.serving.db import feedback

__all__ = [
    "ChangeCounter",
    "SyncedAnswerCache",
    "changed_users",
    "last_event_id",
    "POSTGRES_LAG",
]

POSTGRES_LAG = 1000


class ChangeCounter:
    """A 64-bit counter in a shared file, read lock-free, incremented under ``flock``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)  # zero-filled; a second creator's ftruncate(8) is a no-op
            self._mm = mmap.mmap(fd, 8)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def value(self) -> int:
        return struct.unpack_from("<Q", self._mm, 0)[0]

    def bump(self) -> int:
        """Add one (atomically across processes); returns the new value."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            v = self.value() + 1
            struct.pack_into("<Q", self._mm, 0, v)
            return v
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        try:
            self._mm.close()
        finally:
            os.close(self._fd)


def last_event_id(engine: sa.Engine) -> int:
    """The largest stored event id (0 for none)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(feedback.c.id))).scalar() or 0)


def changed_users(engine: sa.Engine, after_id: int) -> tuple[set[str], int]:
    """Users with events of id above ``after_id`` (minus ``POSTGRES_LAG`` on PostgreSQL) and
    the largest id read (``after_id`` when none)."""
    lag = 0 if engine.dialect.name == "sqlite" else POSTGRES_LAG
    q = sa.select(feedback.c.id, feedback.c.user_id).where(feedback.c.id > after_id - lag)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return {str(r[1]) for r in rows}, max([after_id, *(int(r[0]) for r in rows)])


class SyncedAnswerCache(AnswerCache):
    """An :class:`AnswerCache` that first lets the service catch up with other workers' feedback."""

    def __init__(self, maxsize: int, before_read: Callable[[], None]) -> None:
        super().__init__(maxsize)
        self._before_read = before_read

    def get(self, key: Hashable) -> Any | None:
        self._before_read()
        return super().get(key)
