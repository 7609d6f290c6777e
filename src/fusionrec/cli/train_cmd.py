"""``fusionrec train --config FILE [--run-dir DIR] [--resume]``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fusionrec.cli._common import console, metrics_table, new_run_dir

#: Sub-folder of a run folder that holds a torch model's Trainer output (checkpoint/, log.csv,
#: curve.png).
TRAIN_SUBDIR = "training"


def _latest_resumable(model: str, runs: Path = Path("runs")) -> Path | None:
    """The newest ``runs/*-train-<model>*`` folder that holds a training checkpoint."""
    from fusionrec.training._checkpoint import CHECKPOINT_DIR

    found = [
        p for p in runs.glob(f"*-train-{model}*") if (p / TRAIN_SUBDIR / CHECKPOINT_DIR).is_dir()
    ]
    return max(found, key=lambda p: p.name) if found else None


def train_cmd(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Experiment config (YAML/TOML/JSON). With --resume it defaults to the run's config.json.",
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override, e.g. --set train.epochs=5 (repeatable)."
    ),
    protocol: str | None = typer.Option(None, "--protocol", help="Override data.protocol."),
    output: Path | None = typer.Option(
        None,
        "--run-dir",
        "--output",
        help="Run folder (default: new folder under ./runs/). Torch models keep a checkpoint per "
        "epoch, log.csv and curve.png in its training/ sub-folder.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted run from its last checkpoint (the run folder given by "
        "--run-dir, else the newest ./runs/*-train-<model> folder with a checkpoint); the result "
        "equals an uninterrupted run with the same config.",
    ),
) -> None:
    """Train and evaluate the model described by a config; save it under OUTPUT/models/<name>."""
    from fusionrec.errors import ConfigError
    from fusionrec.experiment import run_experiment
    from fusionrec.experiment.config import load_config

    overrides = list(set_) + ([f"data.protocol={protocol}"] if protocol else [])
    if config is None:
        if not (resume and output is not None):
            raise ConfigError(
                "--config is required (it may be left out only with --resume --run-dir DIR)"
            )
        config = output / "config.json"
        if not config.is_file():
            raise ConfigError(f"cannot resume {output}: it has no config.json (pass --config)")
    cfg = load_config(config, overrides)
    if resume:
        if output is None:
            output = _latest_resumable(cfg.model.name)
            if output is None:
                raise ConfigError(
                    f"--resume: no run folder under ./runs/ holds a checkpoint of {cfg.model.name!r}; "
                    "pass --run-dir DIR"
                )
        elif not output.is_dir():
            raise ConfigError(f"--resume: run folder {output} does not exist")
        console.print(f"resuming {output}")
    run_dir = new_run_dir(f"train-{cfg.model.name}", output)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
    res = run_experiment(cfg, run_dir, train_dir=run_dir / TRAIN_SUBDIR, resume=resume)
    cols = [f"{m}@{k}" for k in cfg.eval.ks for m in cfg.eval.metrics]
    console.print(
        metrics_table(
            f"{cfg.data.name} · {cfg.data.protocol}",
            [res.as_dict()],
            cols,
            [("fit_seconds", "fit s")],
        )
    )
    console.print(f"model saved to {res.model_dir}; metrics in {run_dir / 'metrics.json'}")
    console.print_json(json.dumps({"metrics": res.metrics}))


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
