"""Keyed pseudonyms for user ids at rest (HMAC-SHA256).

A raw user id ``r`` is stored as ``"u_" + HMAC-SHA256(key, r)[:32 hex]``: the same id under the
same key always gives the same pseudonym (joins across a dataset, a model folder and the event
store keep working), and without the key a pseudonym cannot be linked back to the id by
hashing candidate ids (unlike a plain hash).

The key never lives inside a folder it protects. It is read from ``$FUSIONREC_PSEUDONYM_KEY``
(hex) or from ``$FUSIONREC_HOME/keys/pseudonym.key`` (default ``~/.cache/fusionrec``); a folder
records only the key's *fingerprint* (an HMAC of a fixed label, which reveals nothing of the key)
so that re-keying can check it is handed the right old key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fusionrec.errors import ConfigError

__all__ = [
    "KEY_ENV",
    "PREFIX",
    "PseudonymKey",
    "default_key_path",
]

KEY_ENV = "FUSIONREC_PSEUDONYM_KEY"
"""Environment variable holding the key as hex (takes precedence over the key file)."""
PREFIX = "u_"
"""Every pseudonym starts with this, so a pseudonymised id is recognisable."""
_HEX_CHARS = 32  # 128 bits: collisions are negligible below ~10^18 users
_MIN_KEY_BYTES = 16


def default_key_path() -> Path:
    """``$FUSIONREC_HOME/keys/pseudonym.key`` (``~/.cache/fusionrec`` when unset)."""
    home = os.environ.get("FUSIONREC_HOME")
    root = Path(home) if home else Path.home() / ".cache" / "fusionrec"
    return root / "keys" / "pseudonym.key"


class PseudonymKey:
    """A secret HMAC key; ``pseudonymise`` maps raw ids to pseudonyms."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray) or len(secret) < _MIN_KEY_BYTES:
            raise ConfigError(f"a pseudonym key must be at least {_MIN_KEY_BYTES} bytes")
        self._secret = bytes(secret)

    def __repr__(self) -> str:  # never print the secret
        return f"PseudonymKey(fingerprint={self.fingerprint!r})"

    @classmethod
    def generate(cls) -> PseudonymKey:
        """A fresh random 32-byte key."""
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_hex(cls, text: str) -> PseudonymKey:
        try:
            return cls(bytes.fromhex(text.strip()))
        except ValueError:
            raise ConfigError("pseudonym key is not hex (expected e.g. 64 hex characters)") from None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> PseudonymKey:
        """The key from ``path`` if given, else ``$FUSIONREC_PSEUDONYM_KEY``, else the key file.

        Raises:
            ConfigError: no key is configured, or it is not valid hex.
        """
        env = os.environ if env is None else env
        if path is None and env.get(KEY_ENV):
            return cls.from_hex(env[KEY_ENV])
        p = Path(path) if path is not None else default_key_path()
        if not p.is_file():
            raise ConfigError(
                f"no pseudonym key: set {KEY_ENV} or create {p} with `fusionrec privacy keygen`"
            )
        return cls.from_hex(p.read_text(encoding="ascii"))

    def save(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
        """Write the key as hex, readable by the owner only (mode 0600)."""
        p = Path(path) if path is not None else default_key_path()
        if p.exists() and not overwrite:
            raise ConfigError(f"{p} exists; pass overwrite to replace it (the old key is lost)")
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(self._secret.hex() + "\n")
        os.replace(tmp, p)
        return p

    @property
    def fingerprint(self) -> str:
        """A public identifier of the key (HMAC of a fixed label, 16 hex)."""
        return hmac.new(self._secret, b"fusionrec-pseudonym-key-fingerprint", hashlib.sha256).hexdigest()[:16]

    def pseudonym(self, raw_id: object) -> str:
        """The pseudonym of one raw id (its ``str``, UTF-8)."""
        digest = hmac.new(self._secret, str(raw_id).encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:_HEX_CHARS]

    def pseudonymise(self, raw_ids: Iterable[object]) -> np.ndarray:
        """Pseudonyms of ``raw_ids``, in order, as a numpy string array."""
        return np.array([self.pseudonym(r) for r in raw_ids], dtype=str)

    def rekey_map(self, new: PseudonymKey, raw_ids: Iterable[object]) -> dict[str, str]:
        """``{pseudonym under self: pseudonym under new}`` for every raw id given."""
        return {self.pseudonym(r): new.pseudonym(r) for r in raw_ids}
