"""``fusionrec encode-text`` (item text embeddings, cached) and ``fusionrec search`` (text-to-item)."""

from __future__ import annotations

from pathlib import Path

import typer

from fusionrec.cli._common import console


def encode_text_cmd(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (ml-100k) or path."),
    model: str = typer.Option(
        "all-MiniLM-L6-v2", "--model", "-m", help="Text encoder name or local folder."
    ),
    template: str | None = typer.Option(
        None, "--template", help="Item text template, e.g. '{title} ({year}). {genres}'."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the (n_items, dim) float32 matrix here (.npy)."
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Texts per encoder pass."),
    show: int = typer.Option(0, "--show", min=0, help="Print the first N rendered item texts."),
) -> None:
    """Embed every item's text with a pretrained encoder (computed once, then read from the cache)."""
    import time

    import numpy as np

    from fusionrec.data import load_dataset
    from fusionrec.encoders import EncodeStats, encode_items, load_text_encoder, render_item_texts

    ds = load_dataset(dataset)
    if show:
        for i, t in enumerate(render_item_texts(ds, template)[:show]):
            console.print(f"{ds.items.ids[i]}: {t}", highlight=False)
    t0 = time.perf_counter()
    enc = load_text_encoder(model)
    load_s = time.perf_counter() - t0
    stats = EncodeStats()
    emb = encode_items(ds, enc, template, batch_size=batch_size, progress=True, stats=stats)
    console.print(
        f"items encoded: {stats.n_texts}  dim: {stats.dim}  seconds: {stats.seconds:.2f} "
        f"(model load {load_s:.1f})  {_rate(stats.encoded, stats.seconds)}  "
        f"cache hits: {stats.cache_hits}/{stats.n_texts}  model key: {stats.model_key}",
        highlight=False,
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp.npy")
        np.save(tmp, emb, allow_pickle=False)
        tmp.replace(output)
        console.print(f"wrote {output}")


def _rate(encoded: int, seconds: float) -> str:
    """``items/s: N`` for texts actually encoded; a warm cache encodes none (no NaN rate)."""
    if encoded <= 0:
        return "items/s: - (all from cache)"
    return f"items/s: {encoded / seconds:.1f}" if seconds > 0 else "items/s: -"


def search_cmd(
    query: str = typer.Argument(..., help="Free text, e.g. 'a funny animated movie for kids'."),
    model_dir: Path = typer.Option(
        ..., "--model-dir", help="A saved LM model folder (lm_mf, text_seq)."
    ),
    k: int = typer.Option(10, "-k", "--k", min=1, help="How many items."),
) -> None:
    """Items ranked by the similarity of their text to QUERY (embedded with the model's encoder)."""
    from rich.table import Table

    from fusionrec.errors import ConfigError
    from fusionrec.models.base import load_model

    model = load_model(model_dir)
    if not hasattr(model, "search"):
        raise ConfigError(
            f"model {model.name!r} in {model_dir} has no text embeddings to search (use lm_mf or text_seq)"
        )
    hits = model.search(query, k=k)
    titles = model.item_titles_
    t = Table(title=f"{query!r} · {model.name} · encoder {model.config.text_model}")
    t.add_column("rank", justify="right")
    t.add_column("item_id")
    if titles is not None:
        t.add_column("title")
    t.add_column("score", justify="right")
    for r, (iid, s) in enumerate(hits, 1):
        cells = (
            [str(r), iid]
            + ([str(titles[model.items_.index(iid)])] if titles is not None else [])
            + [f"{s:.4f}"]
        )
        t.add_row(*cells)
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("encode-text")(encode_text_cmd)
    app.command("search")(search_cmd)
