"""``fusionrec attach-modality``: encode a folder of raw item files (images or audio, one per
item, named by item id) with a pretrained vision/audio model and save the matrix as a named item
embedding of a dataset folder."""

from __future__ import annotations

from pathlib import Path

import typer

from fusionrec.cli._common import console


def attach_modality_cmd(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (ml-100k) or folder."),
    kind: str = typer.Option(..., "--kind", help="image or audio."),
    files: Path = typer.Option(..., "--files", help="Folder of item files; file stem = item id."),
    model: str = typer.Option(
        ..., "--model", "-m", help="Vision/audio model: Hugging Face name or local folder."
    ),
    name: str | None = typer.Option(None, "--name", help="Embedding name (default: the kind)."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Dataset folder to write (default: --dataset itself when it is a folder).",
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Files per encoder pass."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 ..."),
) -> None:
    """Encode raw item files into an item embedding matrix and save it with the dataset."""
    import time

    import numpy as np

    from fusionrec.data import load_dataset
    from fusionrec.data.modalities import attach_modality
    from fusionrec.encoders.modality_files import encode_folder, load_raw_encoder
    from fusionrec.errors import ConfigError

    if kind not in ("image", "audio"):
        raise ConfigError(f"--kind {kind!r}: choose image or audio")
    dest = output if output is not None else Path(dataset)
    if output is None and not Path(dataset).is_dir():
        raise ConfigError(
            f"--dataset {dataset!r} is not a dataset folder: give --output DIR to write the dataset with its new embedding"
        )
    ds = load_dataset(dataset)
    t0 = time.perf_counter()
    enc = load_raw_encoder(kind, model, device)  # type: ignore[arg-type]
    ids, mat = encode_folder(enc, files, kind, batch_size=batch_size)  # type: ignore[arg-type]
    secs = time.perf_counter() - t0
    label = name or kind
    out = attach_modality(ds, label, (np.asarray(ids), mat))
    known = int((~np.isnan(out.item_embeddings[label]).any(1)).sum())
    path = out.save(dest)
    console.print(
        f"{label}: {len(ids)} files encoded by {model} ({enc.dim}-d, {secs:.1f}s); "
        f"{known}/{ds.n_items} items of {ds.name} have a vector; "
        f"{len(ids) - known} files matched no item. Saved {path}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("attach-modality")(attach_modality_cmd)
