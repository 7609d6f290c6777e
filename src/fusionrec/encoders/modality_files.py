"""A folder of raw item files (one per item, the file name's stem = the item id) -> an item
embedding matrix, through a vision or audio encoder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fusionrec.errors import ConfigError

__all__ = ["RawKind", "load_raw_encoder", "encode_folder", "item_files"]

RawKind = Literal["image", "audio"]


def load_raw_encoder(kind: RawKind, name_or_path: str, device: str = "cpu") -> Any:
    """The vision (``kind="image"``) or audio encoder for ``name_or_path``."""
    if kind == "image":
        from fusionrec.encoders.vision import load_vision_encoder

        return load_vision_encoder(name_or_path, device)
    if kind == "audio":
        from fusionrec.encoders.audio import load_audio_encoder

        return load_audio_encoder(name_or_path, device)
    raise ConfigError(f"unknown modality kind {kind!r}; choose image or audio")


def item_files(folder: str | os.PathLike, kind: RawKind) -> tuple[list[str], list[Path]]:
    """(item ids, files) of ``folder``'s files of ``kind`` (sorted by id); the id is the file
    name without its suffix. ConfigError when the folder is missing, has none, or two files
    share an id."""
    from fusionrec.encoders.audio import AUDIO_SUFFIXES
    from fusionrec.encoders.vision import IMAGE_SUFFIXES

    d = Path(folder)
    if not d.is_dir():
        raise ConfigError(f"--files {folder}: not a folder")
    suffixes = IMAGE_SUFFIXES if kind == "image" else AUDIO_SUFFIXES
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise ConfigError(f"{folder}: no {kind} files (expected suffixes {', '.join(suffixes)})")
    ids = [p.stem for p in files]
    seen: dict[str, Path] = {}
    for i, p in zip(ids, files, strict=True):
        if i in seen:
            raise ConfigError(f"{folder}: item id {i!r} has two files ({seen[i].name}, {p.name})")
        seen[i] = p
    return ids, files


def encode_folder(
    encoder: Any, folder: str | os.PathLike, kind: RawKind, batch_size: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, (n, dim) float32 matrix) of the ``kind`` files in ``folder``."""
    ids, files = item_files(folder, kind)
    return np.asarray(ids, dtype=object), encoder.encode(files, batch_size=batch_size)
