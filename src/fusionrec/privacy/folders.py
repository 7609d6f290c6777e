"""Pseudonymise and re-key saved folders: datasets (``Dataset.save``) and model folders.

A pseudonymised folder holds ``pseudonyms.json`` with the scheme and the key's fingerprint
(never the key). Re-keying needs the raw ids from the system of record, because an HMAC cannot
be inverted: each stored pseudonym ``HMAC(old, r)`` is replaced by ``HMAC(new, r)``; a stored
pseudonym that no given raw id produces is an error (nothing is written).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from fusionrec._fsutil import atomic_write_text
from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap
from fusionrec.errors import ConfigError, DataFormatError
from fusionrec.privacy.pseudonym import PREFIX, PseudonymKey

__all__ = [
    "MARKER",
    "folder_kind",
    "pseudonymise_dataset",
    "pseudonymise_folder",
    "read_marker",
    "rekey_folder",
]

MARKER = "pseudonyms.json"
SCHEME = "hmac-sha256-128"


def pseudonymise_dataset(dataset: Dataset, key: PseudonymKey) -> Dataset:
    """A copy of ``dataset`` whose user ids are pseudonyms (indices, features, items unchanged)."""
    ids = dataset.users.ids
    if len(ids) and all(str(u).startswith(PREFIX) and len(str(u)) == len(PREFIX) + 32 for u in ids[:10]):
        raise ConfigError("user ids already look pseudonymised (u_ + 32 hex); refusing to hash twice")
    users = IdMap(key.pseudonymise(ids), name=dataset.users.name)
    return dataclasses.replace(dataset, users=users, _cache={})


def folder_kind(path: Path) -> str:
    """'dataset' (meta.json + interactions.parquet) or 'model' (config.json + users.npy)."""
    if (path / "meta.json").is_file() and (path / "interactions.parquet").is_file():
        return "dataset"
    if (path / "config.json").is_file() and (path / "users.npy").is_file():
        return "model"
    raise DataFormatError(path, None, "neither a saved Dataset nor a model folder")


def read_marker(path: str | os.PathLike) -> dict | None:
    """The folder's ``pseudonyms.json`` record, or None if it is not pseudonymised."""
    p = Path(path) / MARKER
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataFormatError(p, None, f"unreadable pseudonym record: {e}") from None
    if not isinstance(doc, dict) or doc.get("scheme") != SCHEME or "key_fingerprint" not in doc:
        raise DataFormatError(p, None, f"not a fusionrec pseudonym record (scheme {SCHEME})")
    return doc


def _write_marker(path: Path, key: PseudonymKey) -> None:
    doc = {"scheme": SCHEME, "key_fingerprint": key.fingerprint, "fields": ["user_id"]}
    atomic_write_text(path / MARKER, json.dumps(doc, indent=2))


def _user_id_files(path: Path) -> list[Path]:
    """Every ``users.npy`` of a model folder, nested member folders included."""
    return sorted(p for p in path.rglob("users.npy") if (p.parent / "config.json").is_file())


def _rewrite_npy(p: Path, ids: np.ndarray) -> None:
    tmp = p.with_name(f".{p.name}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, np.asarray(ids, dtype=str), allow_pickle=False)
    os.replace(tmp, p)


def _refresh_manifests(path: Path) -> None:
    from fusionrec.data.manifest import MANIFEST, write_manifest

    for m in path.rglob(MANIFEST):
        write_manifest(m.parent)


def _map_ids(ids: np.ndarray, mapping: Mapping[str, str], where: Path) -> np.ndarray:
    missing = [u for u in ids.tolist() if u not in mapping]
    if missing:
        raise ConfigError(
            f"{where}: {len(missing)} stored pseudonyms match none of the raw ids given "
            "(wrong old key, or the raw id list is incomplete); nothing was changed"
        )
    return np.array([mapping[u] for u in ids.tolist()], dtype=str)


def pseudonymise_folder(path: str | os.PathLike, key: PseudonymKey) -> Path:
    """Replace the raw user ids of a dataset or model folder by pseudonyms under ``key``.

    Raises:
        ConfigError: the folder is already pseudonymised.
        DataFormatError: not a dataset or model folder.
    """
    path = Path(path)
    kind = folder_kind(path)
    if read_marker(path) is not None:
        raise ConfigError(f"{path} is already pseudonymised; use rekey to change its key")
    if kind == "dataset":
        ds = Dataset.load(path)
        pseudonymise_dataset(ds, key).save(path)
    else:
        for p in _user_id_files(path):
            _rewrite_npy(p, key.pseudonymise(np.load(p, allow_pickle=False).tolist()))
    _write_marker(path, key)
    _refresh_manifests(path)
    return path


def rekey_folder(
    path: str | os.PathLike, old: PseudonymKey, new: PseudonymKey, raw_ids: Iterable[object]
) -> Path:
    """Re-key a pseudonymised folder from ``old`` to ``new`` using the raw ids (see module doc).

    Raises:
        ConfigError: the folder is not pseudonymised, ``old`` is not its key, or a stored
            pseudonym is not produced by any raw id.
    """
    path = Path(path)
    kind = folder_kind(path)
    marker = read_marker(path)
    if marker is None:
        raise ConfigError(f"{path} is not pseudonymised (no {MARKER}); pseudonymise it first")
    if marker["key_fingerprint"] != old.fingerprint:
        raise ConfigError(
            f"{path} was pseudonymised with key {marker['key_fingerprint']}, not with the old key "
            f"given ({old.fingerprint})"
        )
    mapping = old.rekey_map(new, raw_ids)
    if kind == "dataset":
        ds = Dataset.load(path)
        users = IdMap(_map_ids(ds.users.ids, mapping, path), name=ds.users.name)
        dataclasses.replace(ds, users=users, _cache={}).save(path)
    else:
        files = _user_id_files(path)
        mapped = [_map_ids(np.load(p, allow_pickle=False).astype(str), mapping, p) for p in files]
        for p, ids in zip(files, mapped, strict=True):
            _rewrite_npy(p, ids)
    _write_marker(path, new)
    _refresh_manifests(path)
    return path
