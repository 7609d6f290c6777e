"""``fusionrec train --config FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fusionrec.cli._common import console, metrics_table, new_run_dir


def train_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (YAML/TOML/JSON)."),
    set_: list[str] = typer.Option([], "--set", help="Override, e.g. --set train.epochs=5 (repeatable)."),
    protocol: str | None = typer.Option(None, "--protocol", help="Override data.protocol."),
    output: Path | None = typer.Option(None, "--output", help="Run folder (default: new folder under ./runs/)."),
) -> None:
    """Train and evaluate the model described by a config; save it under OUTPUT/models/<name>."""
    from fusionrec.config.experiment import load_config
    from fusionrec.experiment import run_experiment

    overrides = list(set_) + ([f"data.protocol={protocol}"] if protocol else [])
    cfg = load_config(config, overrides)
    run_dir = new_run_dir(f"train-{cfg.model.name}", output)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
    res = run_experiment(cfg, run_dir)
    cols = [f"{m}@{k}" for k in cfg.eval.ks for m in cfg.eval.metrics]
    console.print(metrics_table(f"{cfg.data.name} · {cfg.data.protocol}", [res.as_dict()], cols, [("fit_seconds", "fit s")]))
    console.print(f"model saved to {res.model_dir}; metrics in {run_dir / 'metrics.json'}")
    console.print_json(json.dumps({"metrics": res.metrics}))


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
