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
    eval_mode: str = typer.Option(
        "full", "--eval-mode", help="full (rank every item) or a sampled protocol: uni100, pop100 (RecBole's mode strings; labelled as sampled)."
    ),
) -> None:
    """Fetch a dataset (cached), split it, train and evaluate models, print a leaderboard.

    Every model's needs (text, KG, features, ...) are checked against the dataset before anything
    is trained: with --models all a model the dataset cannot feed is skipped (and said so);
    named explicitly, it stops the command up front. A model that fails while training is shown
    in the table with its error, the others still run, and the command exits 1."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fusionrec.errors import FusionRecError
    from fusionrec.experiment import (
        RunOptions,
        export_recommendations,
        export_split,
        prepare,
        run_many,
    )
    from fusionrec.experiment.config import DataConfig, EvalConfig, ExperimentConfig, ModelSpec
    from fusionrec.experiment.progress import EpochProgress, epoch_budget
    from fusionrec.models.registry import get_model, list_models

    t_start = time.perf_counter()
    data_cfg = DataConfig(name=dataset, protocol=protocol)
    ev = EvalConfig(ks=parse_ks(ks), protocol=eval_mode)
    run_all = models.strip().lower() == "all"
    not_run: list[str] = []
    if run_all:
        names = [m.name for m in list_models() if m.cls.needs_configuration is None]
        not_run = [f"{m.name} ({m.cls.needs_configuration})" for m in list_models() if m.cls.needs_configuration]
    else:
        names = parse_list(models)
    for n in names:
        get_model(n)  # unknown names fail before any work
    configs = [ExperimentConfig(data=data_cfg, model=ModelSpec(name=n), eval=ev, seed=seed) for n in names]
    run_dir = new_run_dir("quickstart", output)
    rows: list[dict] = []
    skipped: list[str] = []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as prog:
        task = prog.add_task(f"loading {dataset}", total=len(names) + 1)
        prepared = prepare(data_cfg, seed)
        ds, sp = prepared.dataset, prepared.split
        prog.advance(task)
        if export_dir is not None:
            export_split(sp, export_dir / "splits")
        epochs = EpochProgress(lambda line: prog.update(task, description=line))

        def on_start(cfg: ExperimentConfig) -> None:
            budget = epoch_budget(cfg)
            epochs.start(f"training {cfg.model.name}", budget)
            what = f"training {cfg.model.name}" + (f" (up to {budget} epochs, early stopping on valid)" if budget else "")
            prog.update(task, description=what)

        def on_done(res) -> None:
            if res.skipped:
                skipped.append(f"{res.model} ({res.skipped})")
            else:
                if export_dir is not None and res.recommender is not None:
                    export_recommendations(res.recommender, res.evaluation, export_dir / res.model / "recommendations.csv")
                rows.append(res.as_dict())
                if res.error:
                    console.print(f"[red]{res.model} failed:[/] {res.error}", highlight=False)
            prog.advance(task)

        options = RunOptions(output_dir=run_dir, keep_topk=export_dir is not None, callbacks=(epochs,))
        run_many(configs, options, prepared, skip_unmet=run_all, on_start=on_start, on_done=on_done)
        prog.update(task, description="done")
    cols = [f"{m}@{k}" for k in ev.ks for m in ("recall", "ndcg", "mrr", "hit", "precision")]
    extra = [("fit_seconds", "fit s"), ("eval_seconds", "eval s")]
    title = f"{ds.name} · protocol {protocol} · seed {seed} · {sp.test.n_interactions} test interactions"
    if ev.protocol != "full":
        title += f" · SAMPLED {ev.protocol} evaluation (not comparable to full ranking)"
    console.print(metrics_table(title, rows, cols, extra))
    if not_run:
        console.print("not run with defaults: " + "; ".join(not_run), highlight=False)
    if skipped:
        console.print(f"skipped, the dataset lacks what they need: {'; '.join(skipped)}", highlight=False)
    board = {
        "dataset": ds.name,
        "protocol": protocol,
        "eval_protocol": ev.protocol,
        "seed": seed,
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_interactions": ds.n_interactions,
        "split_sizes": {"train": sp.train.n_interactions, "valid": sp.valid.n_interactions, "test": sp.test.n_interactions},
        "models": rows,
        "skipped": skipped,
        "wall_seconds": time.perf_counter() - t_start,
    }
    atomic_write_text(run_dir / "leaderboard.json", json.dumps(board, indent=2))
    atomic_write_text(run_dir / "leaderboard.md", f"# Leaderboard: {title}\n\n" + markdown_table(rows, cols, extra))
    console.print(f"wrote {run_dir / 'leaderboard.md'}, {run_dir / 'leaderboard.json'} and models under {run_dir / 'models'}")
    if export_dir is not None:
        console.print(f"exported split and recommendations to {export_dir}")
    console.print(f"total {board['wall_seconds']:.1f} s")
    failed = [r["model"] for r in rows if r.get("error")]
    if failed:
        raise FusionRecError(f"{len(failed)} of {len(rows)} models failed: {', '.join(failed)} (errors in the table above)")


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
