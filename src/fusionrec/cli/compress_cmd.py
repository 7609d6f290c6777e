"""``fusionrec compress --model-dir DIR --method int8|fp16|bf16|prune:R|prune-structured:R|onnx --output OUT``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fusionrec.cli._common import console


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def compress_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="A saved torch model folder (left unchanged)."),
    method: str = typer.Option(
        ..., "--method", "-m",
        help="int8 (torchao: int8 tables, dynamic int8 Linear), fp16, bf16, prune:RATIO (magnitude), "
        "prune-structured:RATIO (whole embedding dims / neurons by L2 norm) or onnx (onnxruntime scoring).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="New folder for the compressed model (must not exist or be empty)."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON only."),
) -> None:
    """Compress a trained torch model into a new folder that evaluate, recommend and serve load unchanged."""
    from fusionrec.compress import compress_folder, parse_method

    parse_method(method)  # a bad method fails before the model loads
    manifest = compress_folder(model_dir, method, output)
    if as_json:
        print(json.dumps(manifest, indent=2))
        return
    ratio = manifest["bytes"] / max(manifest["source_bytes"], 1)
    console.print(
        f"{manifest['base_model']} {manifest['spec']}: {_human(manifest['source_bytes'])} -> "
        f"{_human(manifest['bytes'])} ({ratio:.0%} of the source) in {output}"
    )
    console.print(f"next: fusionrec evaluate --model-dir {output}")


def register(app: typer.Typer) -> None:
    app.command("compress")(compress_cmd)
