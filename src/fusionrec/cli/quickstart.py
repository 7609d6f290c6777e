"""``fusionrec quickstart``: fetch, split, train, evaluate several models, print a leaderboard."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from fusionrec.cli._common import (
    atomic_write_text,
    console,
    markdown_table,
    metrics_table,
    new_run_dir,
    parse_ks,
    parse_list,
)

DEFAULT_MODELS = "pop,itemknn,ease,bpr"


def quickstart(
    models: str = typer.Option(DEFAULT_MODELS, "--models", help="Comma-separated model names, or 'all'."),
    dataset: str = typer.Option("ml-100k", "--dataset", help="Dataset name or path."),
    protocol: str = typer.Option("rs", "--protocol", help="rs|temporal|global-temporal|loo|cold-item"),
    output: Path | None = typer.Option(None, "--output", help="Run folder (default: a new folder under ./runs/)."),
    export_dir: Path | None = typer.Option(None, "--export-dir", help="Also write the split and every test user's top-K as CSV here."),
    seed: int = typer.Option(2020, "--seed", help="Seed for the split and the fits."),
    ks: str = typer.Option("10", "--ks", help="Cut-offs, e.g. 10,20."),
) -> None:
    """Fetch a dataset (cached), split it, train and evaluate models, print a leaderboard."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fusionrec.experiment import (
        experiment_record,
        export_recommendations,
        export_split,
        fit_and_evaluate,
        prepare_data,
    )
    from fusionrec.experiment.config import DataConfig, EvalConfig
    from fusionrec.models.registry import get_model, list_models

    t_start = time.perf_counter()
    data_cfg = DataConfig(name=dataset, protocol=protocol)
    ev = EvalConfig(ks=parse_ks(ks))
    skipped: list[str] = []
    if models.strip().lower() == "all":
        names = [m.name for m in list_models() if m.cls.needs_configuration is None]
        skipped = [f"{m.name} ({m.cls.needs_configuration})" for m in list_models() if m.cls.needs_configuration]
    else:
        names = parse_list(models)
    for n in names:
        get_model(n)  # unknown names fail before any work
    run_dir = new_run_dir("quickstart", output)
    rows: list[dict] = []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as prog:
        task = prog.add_task(f"loading {dataset}", total=len(names) + 1)
        ds, sp = prepare_data(data_cfg, seed)
        prog.advance(task)
        if export_dir is not None:
            export_split(sp, export_dir / "splits")
        record = experiment_record(data_cfg, seed, ev)
        for name in names:
            prog.update(task, description=f"training {name}")
            cls = get_model(name)
            try:
                cls().check_dataset(sp.train)
                res, model, er = fit_and_evaluate(
                    name, {}, sp, ev, seed, model_dir=run_dir / "models" / name, experiment=record,
                    keep_topk=export_dir is not None, augment=data_cfg.augment,
                )
                if export_dir is not None:
                    export_recommendations(model, er, export_dir / name / "recommendations.csv")
                rows.append(res.as_dict())
            except Exception as e:  # one model failing must not lose the others' results
                if models.strip().lower() != "all":
                    raise
                rows.append({"model": name, "error": f"{type(e).__name__}: {e}", "metrics": {}})
            prog.advance(task)
        prog.update(task, description="done")
    cols = [f"{m}@{k}" for k in ev.ks for m in ("recall", "ndcg", "mrr", "hit", "precision")]
    extra = [("fit_seconds", "fit s"), ("eval_seconds", "eval s")]
    title = f"{ds.name} · protocol {protocol} · seed {seed} · {sp.test.n_interactions} test interactions"
    console.print(metrics_table(title, rows, cols, extra))
    if skipped:
        console.print("not run with defaults: " + "; ".join(skipped))
    board = {
        "dataset": ds.name,
        "protocol": protocol,
        "seed": seed,
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_interactions": ds.n_interactions,
        "split_sizes": {"train": sp.train.n_interactions, "valid": sp.valid.n_interactions, "test": sp.test.n_interactions},
        "models": rows,
        "wall_seconds": time.perf_counter() - t_start,
    }
    atomic_write_text(run_dir / "leaderboard.json", json.dumps(board, indent=2))
    atomic_write_text(run_dir / "leaderboard.md", f"# Leaderboard: {title}\n\n" + markdown_table(rows, cols, extra))
    console.print(f"wrote {run_dir / 'leaderboard.md'}, {run_dir / 'leaderboard.json'} and models under {run_dir / 'models'}")
    if export_dir is not None:
        console.print(f"exported split and recommendations to {export_dir}")
    console.print(f"total {board['wall_seconds']:.1f} s")
    if any(r.get("error") for r in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
