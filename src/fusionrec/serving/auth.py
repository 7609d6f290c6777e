"""API keys: created once (the secret is shown once), stored salted-and-hashed, checked in constant time.

A key reads ``frk_<key_id>_<secret>``; the id finds the row, the secret is checked against
``sha256(salt || secret)`` with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from fusionrec.errors import ConfigError
from fusionrec.serving.db import api_keys, make_engine

__all__ = ["KeyStore", "KeyInfo", "KeyCheck", "SCOPES", "pseudonymize"]

SCOPES = ("read", "admin")
_PREFIX = "frk"


@dataclass(frozen=True)
class KeyInfo:
    """A stored key without its secret."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class KeyCheck:
    """Outcome of checking a presented key: ``status`` is ok, unknown or revoked."""

    status: str
    key: KeyInfo | None = None


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


class KeyStore:
    """API keys in the service database."""

    def __init__(self, url_or_engine: str | sa.Engine) -> None:
        self.engine = (
            make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )

    def create(
        self, name: str, scopes: tuple[str, ...] | list[str] = ("read",)
    ) -> tuple[str, KeyInfo]:
        """A new key: returns the full key (shown once) and its stored description."""
        scopes = tuple(dict.fromkeys(scopes))
        bad = [s for s in scopes if s not in SCOPES]
        if bad:
            raise ConfigError(f"unknown scope {bad[0]!r}; expected one of {SCOPES}")
        if not name.strip():
            raise ConfigError("a key needs a non-empty name")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        salt = secrets.token_hex(16)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    name=name,
                    salt=salt,
                    key_hash=_hash(salt, secret),
                    scopes=",".join(scopes),
                    created_at=now,
                )
            )
        return f"{_PREFIX}_{key_id}_{secret}", KeyInfo(key_id, name, scopes, now, None)

    def list(self) -> list[KeyInfo]:
        """Every key (revoked ones included), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_info(r) for r in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        """Mark a key revoked (it then gets 403); raises ConfigError for an unknown id."""
        with self.engine.begin() as conn:
            res = conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise ConfigError(f"no API key with id {key_id!r}")
        del res
        return _info(row)

    def check(self, presented: str) -> KeyCheck:
        """Check a presented key in constant time (per stored hash)."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX:
            return KeyCheck("unknown")
        _, key_id, secret = parts
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            # spend the same hashing work so timing does not tell unknown ids apart
            hmac.compare_digest(_hash("00" * 16, secret), "0" * 64)
            return KeyCheck("unknown")
        if not hmac.compare_digest(_hash(row.salt, secret), row.key_hash):
            return KeyCheck("unknown")
        info = _info(row)
        return KeyCheck("revoked" if info.revoked else "ok", info)


def _info(r) -> KeyInfo:
    return KeyInfo(
        r.key_id,
        r.name,
        tuple(s for s in r.scopes.split(",") if s),
        float(r.created_at),
        r.revoked_at,
    )


def pseudonymize(value: object, secret: bytes) -> str:
    """A keyed hash of an id for logs (stable within one service run, not reversible)."""
    return hmac.new(secret, str(value).encode(), hashlib.sha256).hexdigest()[:16]
