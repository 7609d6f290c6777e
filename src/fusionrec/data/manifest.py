"""A saved folder's manifest: the size and SHA-256 of every file, written last.

A folder whose manifest is missing was written by an older version or never finished; a file
whose size or hash differs was damaged after writing. :func:`verify_manifest` tells which, so
the dataset cache can rebuild itself instead of loading (or crashing on) broken files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from fusionrec.errors import DataFormatError

__all__ = ["MANIFEST", "write_manifest", "verify_manifest", "has_manifest"]

MANIFEST = "manifest.json"
_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(folder: str | os.PathLike) -> Path:
    """Record every regular file of ``folder`` (not sub-folders); call after the last file is written."""
    folder = Path(folder)
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    out = folder / MANIFEST
    out.write_text(json.dumps({"manifest_version": _VERSION, "files": files}, indent=1))
    return out


def has_manifest(folder: str | os.PathLike) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def verify_manifest(folder: str | os.PathLike, *, hashes: bool = True) -> None:
    """Raise :class:`DataFormatError` naming the first file that is missing, resized or altered.

    Args:
        folder: a folder written with :func:`write_manifest`.
        hashes: also compare SHA-256 (reads every byte; sizes alone catch truncation).
    """
    folder = Path(folder)
    mpath = folder / MANIFEST
    try:
        doc = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(mpath, None, "manifest missing (folder unfinished or too old)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFormatError(mpath, None, f"unreadable manifest: {e}") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict) or doc.get("manifest_version") != _VERSION:
        raise DataFormatError(mpath, None, "not a fusionrec manifest (expected manifest_version 1 and files)")
    for name, rec in files.items():
        if not isinstance(rec, dict) or Path(str(name)).name != name or name in ("", ".", ".."):
            raise DataFormatError(mpath, None, f"bad manifest entry {name!r}")
        p = folder / name
        if not p.is_file():
            raise DataFormatError(p, None, "file listed in the manifest is missing")
        size = p.stat().st_size
        if size != rec.get("bytes"):
            raise DataFormatError(
                p, None, f"{size} bytes, the manifest says {rec.get('bytes')} (truncated or damaged)"
            )
        if hashes and _sha256(p) != rec.get("sha256"):
            raise DataFormatError(p, None, "content differs from the manifest's SHA-256 (damaged)")
