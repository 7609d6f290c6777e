"""Durable store of feedback events (view, click, rate, purchase)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from fusionrec.serving.db import feedback, make_engine

__all__ = ["EventStore", "Event", "EVENT_TYPES"]

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


class EventStore:
    """Append-only feedback log; every ``add`` is committed before it returns."""

    def __init__(self, url_or_engine: str | sa.Engine) -> None:
        self.engine = (
            make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )

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
                    user_id=str(user_id),
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
            .where(feedback.c.user_id == str(user_id))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(q)]

    def items_for_user(self, user_id: str) -> list[str]:
        """Item ids the user gave feedback on, oldest first, without repeats."""
        q = (
            sa.select(feedback.c.item_id)
            .where(feedback.c.user_id == str(user_id))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        with self.engine.connect() as conn:
            return list(dict.fromkeys(r[0] for r in conn.execute(q)))

    def users(self) -> set[str]:
        """Every user id with at least one stored event."""
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(feedback.c.user_id).distinct())}

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


def _event(r) -> Event:
    return Event(int(r.id), r.user_id, r.item_id, r.event, r.value, float(r.ts))
