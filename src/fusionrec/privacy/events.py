"""Pseudonymise and re-key the event store (any SQLAlchemy URL; every table with ``user_id``).

The store records the key fingerprint in a one-row table ``fusionrec_pseudonyms`` so a
re-key checks it is handed the right old key and a second pseudonymisation is refused. The
whole rewrite runs in one transaction: it completes or leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from fusionrec.errors import ConfigError
from fusionrec.privacy.folders import SCHEME
from fusionrec.privacy.pseudonym import PseudonymKey

__all__ = ["pseudonymise_events", "rekey_events", "events_key_fingerprint"]

_META = "fusionrec_pseudonyms"


def _engine(url_or_engine: str | sa.Engine) -> sa.Engine:
    return sa.create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine


def _user_tables(conn: sa.Connection) -> list[sa.Table]:
    md = sa.MetaData()
    md.reflect(conn)
    return [t for name, t in md.tables.items() if name != _META and "user_id" in t.c]


def events_key_fingerprint(url_or_engine: str | sa.Engine) -> str | None:
    """The fingerprint of the key the store was pseudonymised with, or None."""
    eng = _engine(url_or_engine)
    with eng.connect() as conn:
        if not sa.inspect(conn).has_table(_META):
            return None
        row = conn.execute(sa.text(f"SELECT key_fingerprint FROM {_META}")).first()
        return None if row is None else str(row[0])


def _rewrite(conn: sa.Connection, mapping_for: callable) -> int:
    changed = 0
    for t in _user_tables(conn):
        users = [r[0] for r in conn.execute(sa.select(t.c.user_id).distinct())]
        for u in users:
            new = mapping_for(u)
            if new != u:
                changed += conn.execute(t.update().where(t.c.user_id == u).values(user_id=new)).rowcount
    return changed


def _set_meta(conn: sa.Connection, key: PseudonymKey) -> None:
    conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {_META} (scheme VARCHAR(32), key_fingerprint VARCHAR(32))"))
    conn.execute(sa.text(f"DELETE FROM {_META}"))
    conn.execute(
        sa.text(f"INSERT INTO {_META} (scheme, key_fingerprint) VALUES (:s, :f)"),
        {"s": SCHEME, "f": key.fingerprint},
    )


def pseudonymise_events(url_or_engine: str | sa.Engine, key: PseudonymKey) -> int:
    """Replace every raw ``user_id`` by its pseudonym; returns the number of rows changed.

    Raises:
        ConfigError: the store is already pseudonymised.
    """
    eng = _engine(url_or_engine)
    if events_key_fingerprint(eng) is not None:
        raise ConfigError("the event store is already pseudonymised; use rekey to change its key")
    with eng.begin() as conn:
        n = _rewrite(conn, key.pseudonym)
        _set_meta(conn, key)
    return n


def rekey_events(
    url_or_engine: str | sa.Engine, old: PseudonymKey, new: PseudonymKey, raw_ids: Iterable[object]
) -> int:
    """Re-key a pseudonymised store from ``old`` to ``new`` (raw ids needed: see folders.py).

    Raises:
        ConfigError: not pseudonymised, wrong old key, or a stored pseudonym matches no raw id.
    """
    eng = _engine(url_or_engine)
    fp = events_key_fingerprint(eng)
    if fp is None:
        raise ConfigError("the event store is not pseudonymised; pseudonymise it first")
    if fp != old.fingerprint:
        raise ConfigError(f"the event store was pseudonymised with key {fp}, not {old.fingerprint}")
    mapping = old.rekey_map(new, raw_ids)
    missing: list[str] = []

    def lookup(u: str) -> str:
        if u not in mapping:
            missing.append(u)
            return u
        return mapping[u]

    with eng.begin() as conn:
        n = _rewrite(conn, lookup)
        if missing:
            raise ConfigError(
                f"{len(missing)} stored pseudonyms match none of the raw ids given; nothing was changed"
            )
        _set_meta(conn, new)
    return n
