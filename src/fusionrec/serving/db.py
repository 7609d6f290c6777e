"""The service's database: feedback events and API keys (SQLAlchemy Core; SQLite or PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

__all__ = ["metadata", "feedback", "api_keys", "make_engine"]

metadata = sa.MetaData()

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(256), nullable=False, index=True),
    sa.Column("item_id", sa.String(256), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("scopes", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)


def _private_file(path: Path) -> None:
    """Create the SQLite file (and a missing folder) readable by its owner only: it holds API
    key hashes and every user's feedback. SQLite gives its -wal/-shm files the same mode."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:  # not ours to change (a shared database): leave it as its owner set it
        pass


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with the tables created; SQLite files run in WAL mode."""
    if url.startswith("sqlite"):
        db = sa.engine.make_url(url).database
        if db and db != ":memory:" and not db.startswith("file:"):
            _private_file(Path(db).expanduser())
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    return engine
