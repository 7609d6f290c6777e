"""``compress_folder``: a saved torch model folder in, a new compressed folder out.

The source folder is never written to. The output must not exist or be empty; it is built
beside it under a hidden name and renamed into place when complete, with the source's
``experiment.json`` (so ``fusionrec evaluate --model-dir OUT`` rebuilds the same split) and a
``compression.json`` manifest: method, ratio, source folder, base model, bytes of both folders.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fusionrec._fsutil import replace_dir
from fusionrec.compress.model import CompressedModel
from fusionrec.compress.spec import CompressionSpec, parse_method
from fusionrec.errors import ConfigError, ModelStateError

__all__ = ["compress_folder", "compress_model", "folder_bytes", "read_manifest", "MANIFEST_FILE"]

MANIFEST_FILE = "compression.json"
#: the experiment record a saved folder carries (``fusionrec.experiment.EXPERIMENT_FILE``; this
#: layer sits below experiment/ and names the file rather than importing it)
_EXPERIMENT_FILE = "experiment.json"


def folder_bytes(folder: str | Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def compress_model(model: Any, method: str | CompressionSpec, linear_int8: str = "auto") -> CompressedModel:
    """Compress a fitted torch model in memory (the model itself is left unchanged)."""
    return CompressedModel.from_model(model, method, linear_int8=linear_int8)


def _check_paths(src: Path, out: Path) -> None:
    if not src.exists():
        raise ModelStateError(f"{src}: no such model folder")
    if not src.is_dir():
        raise ModelStateError(f"{src}: not a folder (a saved model is a folder)")
    s, o = src.resolve(), out.resolve()
    if s == o:
        raise ConfigError(f"--output {out} is the source folder; compression never overwrites it")
    if s in o.parents:
        raise ConfigError(f"--output {out} lies inside the source folder {src}")
    if o in s.parents:
        raise ConfigError(f"--output {out} contains the source folder {src}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--output {out} exists and is not empty; choose a new folder")


def compress_folder(
    model_dir: str | Path, method: str, output: str | Path, *, linear_int8: str = "auto"
) -> dict[str, Any]:
    """Compress the saved torch model in ``model_dir`` with ``method`` into the new folder
    ``output``; returns the manifest (also written as ``output/compression.json``)."""
    from fusionrec import __version__
    from fusionrec.models.base import load_model

    spec = parse_method(method)  # a bad method fails before anything loads
    src, out = Path(model_dir), Path(output)
    _check_paths(src, out)
    model = load_model(src, device="cpu")
    comp = compress_model(model, spec, linear_int8=linear_int8)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp = comp.save(work / "model")
        if (src / _EXPERIMENT_FILE).is_file():
            shutil.copyfile(src / _EXPERIMENT_FILE, tmp / _EXPERIMENT_FILE)
        manifest = {
            "method": spec.kind,
            "ratio": spec.ratio,
            "spec": str(spec),
            "source": str(src.resolve()),
            "base_model": comp.config.base,
            # what the source folder holds: differs from base_model where a part is compressed
            # (a distilled model's student)
            "source_model": model.name,
            "linear_int8": comp.config.linear_int8 if spec.kind == "int8" else None,
            "source_bytes": folder_bytes(src),
            "bytes": 0,
            "fusionrec_version": __version__,
        }
        manifest["bytes"] = folder_bytes(tmp)  # without the manifest itself
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """``compression.json`` of a compressed folder (None for an uncompressed one)."""
    p = Path(folder) / MANIFEST_FILE
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ModelStateError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ModelStateError(f"{p}: must hold a JSON object")
    return data
