"""``fusionrec explain --model-dir DIR --user U [--item I]``: why a model recommends an item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from fusionrec.cli._common import console


def explain_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="A saved model folder."),
    user: str = typer.Option(..., "--user", help="External user id."),
    item: str | None = typer.Option(None, "--item", help="External item id (default: the user's top recommendation)."),
    top: int = typer.Option(5, "--top", min=1, help="Contributors / paths / fields to show."),
    max_hops: int = typer.Option(2, "--max-hops", min=1, max=3, help="Longest KG path (cke, kgat)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Explain a recommendation: leave-one-out history contributions (any model), SASRec
    attention, knowledge-graph paths (cke, kgat; the KG is reloaded from the model's dataset)
    and Integrated Gradients feature attributions (deepfm, two_tower)."""
    import numpy as np

    from fusionrec.errors import ConfigError
    from fusionrec.explain.report import explain_recommendation
    from fusionrec.models.base import load_model

    model = load_model(model_dir)
    uidx = int(model.users_.to_idx(np.asarray([user], dtype=object))[0])
    if item is None:
        iidx = int(model.recommend_indices(np.array([uidx]), 1)[0][0, 0])
    else:
        iidx = int(model.items_.to_idx(np.asarray([item], dtype=object))[0])
    kg = None
    if model.capabilities.needs_kg:
        from fusionrec.experiment import split_for_model_dir

        sp, _ = split_for_model_dir(model_dir)
        kg = sp.train.kg
    try:
        out = explain_recommendation(model, uidx, iidx, kg=kg, top=top, max_hops=max_hops)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if as_json:
        print(json.dumps(out))
        return
    _print(out)


def _label(it: dict[str, Any]) -> str:
    from rich.markup import escape

    return escape(f"{it['item_id']}" + (f"  {it['title']}" if "title" in it else ""))


def _print(out: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(
        f"[bold]{out['model']}[/] · user {out.get('user_id')} · item {_label(out['item'])}"
        + (f" · score {out['score']:.4f}" if "score" in out else "")
        + f" · {out['history_size']} history items"
    )
    for key, head in (("contributions", "contribution"), ("attention", "attention")):
        if key in out:
            t = Table(title=f"{key} ({out[key]['method']})")
            t.add_column("history item")
            t.add_column(head, justify="right")
            for it in out[key]["items"]:
                t.add_row(_label(it), f"{it['weight']:.4f}")
            console.print(t)
    if "kg_paths" in out:
        t = Table(title="knowledge-graph paths")
        t.add_column("path")
        t.add_column("weight", justify="right")
        for p in out["kg_paths"]:
            t.add_row(escape(p["text"]), f"{p['weight']:.4g}")
        if not out["kg_paths"]:
            t.add_row("(no path within the hop limit)", "")
        console.print(t)
    if "features" in out:
        f = out["features"]
        t = Table(title=f"feature attributions ({f['method']}; score {f['score']:.4f} vs no fields {f['baseline_score']:.4f})")
        t.add_column("field")
        t.add_column("attribution", justify="right")
        for r in f["fields"][:10]:
            t.add_row(escape(r["field"]), f"{r['attribution']:+.4f}")
        console.print(t)
    for k, why in out.get("skipped", {}).items():
        console.print(f"[dim]{k}: {escape(why)}[/]")


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)
