"""Durable store of feedback events (view, click, rate, purchase).

With a pseudonym key (``$FUSIONREC_PSEUDONYM_KEY``, the service's privacy key, or one passed in)
every user id is replaced by its keyed pseudonym (``fusionrec.privacy.pseudonym``) *before* it
is written, and reads hash the id they are asked about, so the database never holds a raw user
id; the key stays outside the store, which records only its fingerprint. A store already
pseudonymised refuses to open without its key (raw ids would be mixed in), and a key is refused
for a store holding raw ids (pseudonymise it first: ``fusionrec privacy pseudonymise URL``).
Rotation: ``fusionrec privacy rekey URL`` (docs/privacy.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from fusionrec.errors import ConfigError
from fusionrec.serving.db import feedback, make_engine

if TYPE_CHECKING:
    from fusionrec.privacy.pseudonym import PseudonymKey

__all__ = ["EventStore", "Event", "EVENT_TYPES", "PseudonymSet"]

EVENT_TYPES = ("view", "click", "rate", "purchase")


@dataclass(frozen=True)
class Event:
    """One stored feedback event."""

    id: int
    user_id: str
    item_id: str
    event: str
    value: float | None
    ts: float


_FROM_ENV = "env"
KEY_ENV = "FUSIONREC_PSEUDONYM_KEY"


class PseudonymSet(set):
    """The store's pseudonyms, answering ``raw_id in s`` and ``s.add(raw_id)`` by hashing the raw
    id (so a caller holding raw ids keeps working); ``update`` takes pseudonyms as read from the
    database."""

    def __init__(self, items: Iterable[str], key: PseudonymKey) -> None:
        super().__init__(items)
        self._key = key

    def __contains__(self, raw_id: object) -> bool:
        return super().__contains__(self._key.pseudonym(raw_id))

    def add(self, raw_id: object) -> None:
        super().add(self._key.pseudonym(raw_id))


class EventStore:
    """Append-only feedback log; every ``add`` is committed before it returns.

    ``pseudonym_key``: ``"env"`` (default) uses ``$FUSIONREC_PSEUDONYM_KEY`` when it is set,
    ``None`` stores raw ids, a :class:`~fusionrec.privacy.pseudonym.PseudonymKey` pseudonymises
    with that key (see module doc).

    Raises:
        ConfigError: the store is pseudonymised under another key or no key is configured, or
            a key is configured for a store that holds raw ids.
    """

    def __init__(self, url_or_engine: str | sa.Engine, pseudonym_key: PseudonymKey | str | None = _FROM_ENV) -> None:
        self.engine = (
            make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )
        self.key = _resolve_key(pseudonym_key)
        self._check_key()

    def _check_key(self) -> None:
        from fusionrec.privacy.events import _set_meta, events_key_fingerprint

        fp = events_key_fingerprint(self.engine)
        if self.key is None:
            if fp is not None:
                raise ConfigError(
                    f"the event store is pseudonymised (key {fp}); configure that key "
                    f"(${KEY_ENV}) so raw user ids are not written next to its pseudonyms"
                )
            return
        if fp is None:
            if self.count() > 0:
                raise ConfigError(
                    "a pseudonym key is configured but the event store holds raw user ids; "
                    "run `fusionrec privacy pseudonymise URL` with that key first"
                )
            with self.engine.begin() as conn:
                _set_meta(conn, self.key)
        elif fp != self.key.fingerprint:
            raise ConfigError(f"the event store was pseudonymised with key {fp}, not {self.key.fingerprint}")

    def _uid(self, user_id: object) -> str:
        return str(user_id) if self.key is None else self.key.pseudonym(user_id)

    def add(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None = None,
        ts: float | None = None,
    ) -> int:
        """Store one event durably; returns its id."""
        if event not in EVENT_TYPES:
            raise ValueError(f"unknown event {event!r}; expected one of {EVENT_TYPES}")
        now = time.time()
        with self.engine.begin() as conn:
            res = conn.execute(
                feedback.insert().values(
                    user_id=self._uid(user_id),
                    item_id=str(item_id),
                    event=event,
                    value=value,
                    ts=now if ts is None else float(ts),
                    received_at=now,
                )
            )
            return int(res.inserted_primary_key[0])

    def for_user(self, user_id: str) -> list[Event]:
        """The user's events, oldest first."""
        q = (
            sa.select(feedback)
            .where(feedback.c.user_id == self._uid(user_id))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(q)]

    def items_for_user(self, user_id: str) -> list[str]:
        """Item ids the user gave feedback on, oldest first, without repeats."""
        q = (
            sa.select(feedback.c.item_id)
            .where(feedback.c.user_id == self._uid(user_id))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        with self.engine.connect() as conn:
            return list(dict.fromkeys(r[0] for r in conn.execute(q)))

    def users(self) -> set[str]:
        """Every user id with at least one stored event (pseudonyms in a pseudonymised store, in
        a :class:`PseudonymSet` that answers membership of raw ids)."""
        with self.engine.connect() as conn:
            ids = {r[0] for r in conn.execute(sa.select(feedback.c.user_id).distinct())}
        return ids if self.key is None else PseudonymSet(ids, self.key)

    def frame(self) -> pd.DataFrame:
        """All events as a table (id, user_id, item_id, event, value, ts), oldest first."""
        q = sa.select(
            feedback.c.id,
            feedback.c.user_id,
            feedback.c.item_id,
            feedback.c.event,
            feedback.c.value,
            feedback.c.ts,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(feedback.c.id)).all()
        return pd.DataFrame(
            [tuple(r) for r in rows], columns=["id", "user_id", "item_id", "event", "value", "ts"]
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(feedback)).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def _resolve_key(key: PseudonymKey | str | None) -> PseudonymKey | None:
    if key is None or not isinstance(key, str):
        return key
    if key != _FROM_ENV:
        raise ConfigError(f"pseudonym_key must be a PseudonymKey, None or 'env', not {key!r}")
    text = os.environ.get(KEY_ENV, "")
    if not text.strip():
        return None
    from fusionrec.privacy.pseudonym import PseudonymKey

    return PseudonymKey.from_hex(text)


def _event(r) -> Event:
    return Event(int(r.id), r.user_id, r.item_id, r.event, r.value, float(r.ts))
