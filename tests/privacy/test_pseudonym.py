"""Pseudonyms: stable under a key, changed by rotation, no raw id left in a folder."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.classic.pop import Pop
from fusionrec.privacy import PseudonymKey, pseudonymise_folder, read_marker, rekey_folder
from fusionrec.privacy.events import events_key_fingerprint, pseudonymise_events, rekey_events

RAW = [f"alice-{i:04d}" for i in range(12)]
KEY_A = PseudonymKey(b"A" * 32)
KEY_B = PseudonymKey(b"B" * 32)


def _toy() -> Dataset:
    rng = np.random.default_rng(0)
    rows = [(u, f"item{int(i)}") for u in RAW for i in rng.choice(20, 5, replace=False)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"])
    users = pd.DataFrame({"user_id": RAW, "age": [20 + i for i in range(12)], "zip_code": ["02139"] * 12})
    return Dataset.from_frames(inter, users=users, user_feature_types={"age": "float", "zip_code": "token"})


def _no_raw_id(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            blob = p.read_bytes()
            for r in RAW:
                assert r.encode() not in blob, f"{r} in {p}"
                assert r.encode("utf-32-le") not in blob, f"{r} (numpy unicode) in {p}"


def test_known_answer_hmac() -> None:
    want = "u_" + hmac.new(b"A" * 32, b"alice-0000", hashlib.sha256).hexdigest()[:32]
    assert KEY_A.pseudonym("alice-0000") == want
    assert KEY_A.pseudonym("alice-0000") == KEY_A.pseudonym("alice-0000")
    assert KEY_B.pseudonym("alice-0000") != want
    assert "A" * 8 not in repr(KEY_A)


def test_key_from_env_and_file(tmp_path: Path) -> None:
    assert PseudonymKey.load(env={"FUSIONREC_PSEUDONYM_KEY": (b"A" * 32).hex()}).fingerprint == KEY_A.fingerprint
    p = KEY_B.save(tmp_path / "keys" / "pseudonym.key")
    assert p.stat().st_mode & 0o077 == 0
    assert PseudonymKey.load(p).pseudonym("x") == KEY_B.pseudonym("x")
    with pytest.raises(ConfigError, match="exists"):
        KEY_B.save(p)
    with pytest.raises(ConfigError, match="no pseudonym key"):
        PseudonymKey.load(env={"FUSIONREC_HOME": str(tmp_path / "none")} | {}, path=tmp_path / "missing")
    with pytest.raises(ConfigError, match="at least"):
        PseudonymKey(b"short")


def test_dataset_folder_pseudonymised_and_rekeyed(tmp_path: Path) -> None:
    ds = _toy()
    folder = ds.save(tmp_path / "ds")
    pseudonymise_folder(folder, KEY_A)
    _no_raw_id(folder)
    back = Dataset.load(folder)  # manifest refreshed: verifies
    assert list(back.users.ids) == list(KEY_A.pseudonymise(RAW))
    np.testing.assert_array_equal(back.user_idx, ds.user_idx)
    assert read_marker(folder)["key_fingerprint"] == KEY_A.fingerprint
    with pytest.raises(ConfigError, match="already pseudonymised"):
        pseudonymise_folder(folder, KEY_A)
    with pytest.raises(ConfigError, match="not with the old key"):
        rekey_folder(folder, KEY_B, KEY_A, RAW)
    with pytest.raises(ConfigError, match="match none"):
        rekey_folder(folder, KEY_A, KEY_B, RAW[:-1])
    assert list(Dataset.load(folder).users.ids) == list(KEY_A.pseudonymise(RAW))  # untouched
    rekey_folder(folder, KEY_A, KEY_B, RAW)
    assert list(Dataset.load(folder).users.ids) == list(KEY_B.pseudonymise(RAW))
    assert read_marker(folder)["key_fingerprint"] == KEY_B.fingerprint
    _no_raw_id(folder)


def test_model_folder_pseudonymised(tmp_path: Path) -> None:
    from fusionrec.models.base import load_model

    ds = _toy()
    model = Pop().fit(ds)
    folder = model.save(tmp_path / "m")
    before = model.recommend([RAW[0]], k=3)
    pseudonymise_folder(folder, KEY_A)
    _no_raw_id(folder)
    loaded = load_model(folder)
    after = loaded.recommend([KEY_A.pseudonym(RAW[0])], k=3)
    assert before["item_id"].tolist() == after["item_id"].tolist()
    rekey_folder(folder, KEY_A, KEY_B, RAW)
    assert set(load_model(folder).users_.ids.tolist()) == set(KEY_B.pseudonymise(RAW).tolist())


def test_event_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE feedback (id INTEGER PRIMARY KEY, user_id TEXT, item_id TEXT)"))
        for i, r in enumerate(RAW[:3] * 2):
            c.execute(sa.text("INSERT INTO feedback VALUES (:i, :u, 'x')"), {"i": i, "u": r})
    assert pseudonymise_events(eng, KEY_A) == 6
    assert events_key_fingerprint(eng) == KEY_A.fingerprint
    with eng.connect() as c:
        got = sorted({r[0] for r in c.execute(sa.text("SELECT user_id FROM feedback"))})
    assert got == sorted(KEY_A.pseudonymise(RAW[:3]).tolist())
    with pytest.raises(ConfigError, match="already"):
        pseudonymise_events(eng, KEY_A)
    with pytest.raises(ConfigError, match="match none"):
        rekey_events(eng, KEY_A, KEY_B, RAW[:2])
    assert events_key_fingerprint(eng) == KEY_A.fingerprint  # rolled back
    assert rekey_events(eng, KEY_A, KEY_B, RAW) == 6
    with eng.connect() as c:
        got = sorted({r[0] for r in c.execute(sa.text("SELECT user_id FROM feedback"))})
    assert got == sorted(KEY_B.pseudonymise(RAW[:3]).tolist())
    eng.dispose()
    assert RAW[0].encode() not in (tmp_path / "events.db").read_bytes()
