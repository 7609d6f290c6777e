"""``fusionrec data fetch|info``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fusionrec.cli._common import console

data_app = typer.Typer(help="Fetch datasets and inspect them.", no_args_is_help=True)


@data_app.command("fetch")
def fetch_cmd(
    name: str = typer.Argument(..., help="Dataset name, e.g. ml-100k."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache root (default $FUSIONREC_HOME or ~/.cache/fusionrec)."),
) -> None:
    """Download a dataset into the cache (a cache hit costs nothing)."""
    import time

    from fusionrec.data import fetch

    t0 = time.perf_counter()
    path = fetch(name, cache_dir=cache_dir, progress=True)
    console.print(f"{name}: {path}  ({time.perf_counter() - t0:.1f} s)")


@data_app.command("info")
def info_cmd(
    name_or_path: str = typer.Argument(..., help="Dataset name or path."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Users, items, interactions, density and which side information is present."""
    from rich.table import Table

    from fusionrec.data import load_dataset

    ds = load_dataset(name_or_path, progress=True)
    info = ds.info()
    if as_json:
        console.print_json(json.dumps(info))
        return
    t = Table(title=f"dataset {info['name']}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("users", f"{info['users']:,}")
    t.add_row("items", f"{info['items']:,}")
    t.add_row("interactions", f"{info['interactions']:,}")
    t.add_row("density", f"{info['density']:.4%}")
    t.add_row("ratings / timestamps", f"{'yes' if info['has_rating'] else 'no'} / {'yes' if info['has_timestamp'] else 'no'}")
    t.add_row("user features", ", ".join(f"{c} ({ty})" for c, ty in info["user_features"]) or "none")
    t.add_row("item features", ", ".join(f"{c} ({ty})" for c, ty in info["item_features"]) or "none")
    t.add_row("item text fields", ", ".join(info["item_text_fields"]) or "none")
    kg = info["kg"]
    t.add_row(
        "knowledge graph",
        "none" if kg is None else f"{kg['triples']:,} triples, {kg['relations']} relations, {kg['entities']:,} entities, {kg['linked_items']:,} linked items",
    )
    t.add_row("item embeddings", ", ".join(f"{k} ({d}-d)" for k, d in info["item_embeddings"].items()) or "none")
    console.print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
