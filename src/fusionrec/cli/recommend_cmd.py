"""``fusionrec recommend --model-dir DIR --user U``."""

from __future__ import annotations

from pathlib import Path

import typer

from fusionrec.cli._common import console


def recommend_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="A saved model folder."),
    user: list[str] = typer.Option(..., "--user", "-u", help="External user id (repeatable)."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="How many items."),
    include_seen: bool = typer.Option(False, "--include-seen", help="Allow items the user already has."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
) -> None:
    """Top-k items for users, with titles when the model's dataset had them."""
    from rich.table import Table

    from fusionrec.models.base import load_model

    model = load_model(model_dir)
    recs = model.recommend(user, k=k, exclude_seen=not include_seen)
    titles = model.item_titles_
    if titles is not None:
        recs["title"] = titles[model.items_.to_idx(recs["item_id"].to_numpy())]
    if as_csv:
        print(recs.to_csv(index=False), end="")
        return
    for uid, grp in recs.groupby("user_id", sort=False):
        note = " (unknown user: most popular items)" if grp["fallback"].any() else ""
        t = Table(title=f"user {uid}{note} · {model.name}")
        t.add_column("rank", justify="right")
        t.add_column("item_id")
        if "title" in grp:
            t.add_column("title")
        t.add_column("score", justify="right")
        for r in grp.itertuples():
            cells = [str(r.rank), str(r.item_id)] + ([str(r.title)] if "title" in grp else []) + [f"{r.score:.4f}"]
            t.add_row(*cells)
        console.print(t)


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_cmd)
