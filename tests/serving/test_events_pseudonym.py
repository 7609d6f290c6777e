"""Feedback events are pseudonymised at write time when a pseudonym key is configured."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fusionrec.errors import ConfigError
from fusionrec.privacy.pseudonym import PseudonymKey
from fusionrec.serving.events import EventStore


def _raw_dump(path: Path) -> str:
    """Every value of every table of the SQLite file, as text (what someone reading the file sees)."""
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for t in tables for row in con.execute(f'SELECT * FROM "{t}"'))
    finally:
        con.close()


def test_raw_db_holds_no_raw_user_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSIONREC_PSEUDONYM_KEY", raising=False)
    key = PseudonymKey(b"k" * 32)
    db = tmp_path / "ev.db"
    store = EventStore(f"sqlite:///{db}", pseudonym_key=key)
    store.add("alice-1984", "i1", "click", ts=1.0)
    store.add("alice-1984", "i2", "rate", 4.0, ts=2.0)
    store.add("bob-1990", "i1", "view", ts=3.0)
    # reads by raw id still work (the id is hashed on the way in)
    assert [e.item_id for e in store.for_user("alice-1984")] == ["i1", "i2"]
    assert store.items_for_user("bob-1990") == ["i1"]
    users = store.users()
    assert "alice-1984" in users and "carol" not in users
    assert set(users) == {key.pseudonym("alice-1984"), key.pseudonym("bob-1990")}
    assert set(store.frame()["user_id"]) == set(users)
    store.dispose()
    dump = _raw_dump(db)
    assert "alice" not in dump and "bob" not in dump
    assert key.pseudonym("alice-1984") in dump and key.fingerprint in dump
    assert (b"k" * 32).hex() not in dump and "kkkk" not in dump  # the key itself is not stored


def test_key_mismatch_and_raw_store_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSIONREC_PSEUDONYM_KEY", raising=False)
    key = PseudonymKey(b"k" * 32)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    EventStore(url, pseudonym_key=key).add("alice", "i1", "click")
    with pytest.raises(ConfigError, match="pseudonymised"):
        EventStore(url, pseudonym_key=None)  # raw ids would be written next to pseudonyms
    with pytest.raises(ConfigError, match="not"):
        EventStore(url, pseudonym_key=PseudonymKey(b"x" * 32))
    raw_url = f"sqlite:///{tmp_path / 'raw.db'}"
    EventStore(raw_url, pseudonym_key=None).add("alice", "i1", "click")
    with pytest.raises(ConfigError, match="raw user ids"):
        EventStore(raw_url, pseudonym_key=key)
    with pytest.raises(ConfigError, match="pseudonym_key"):
        EventStore(raw_url, pseudonym_key="file")


def test_key_from_the_service_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = PseudonymKey(b"e" * 32)
    monkeypatch.setenv("FUSIONREC_PSEUDONYM_KEY", (b"e" * 32).hex())
    db = tmp_path / "env.db"
    store = EventStore(f"sqlite:///{db}")
    store.add("dave", "i9", "purchase")
    store.dispose()
    dump = _raw_dump(db)
    assert "dave" not in dump and key.pseudonym("dave") in dump
    monkeypatch.delenv("FUSIONREC_PSEUDONYM_KEY")
    with pytest.raises(ConfigError, match="configure that key"):
        EventStore(f"sqlite:///{db}")
