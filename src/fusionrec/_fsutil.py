"""Atomic file-system helpers shared by every writer (datasets, models, caches)."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["replace_dir"]


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``, replacing an existing one.

    The old folder is renamed aside first, so a reader never sees a half-written folder."""
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(path)
