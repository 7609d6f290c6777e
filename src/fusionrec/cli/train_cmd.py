"""``fusionrec train --config FILE [--run-dir DIR] [--resume]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fusionrec.cli._common import atomic_write_text, console, metrics_table, new_run_dir

if TYPE_CHECKING:
    from fusionrec.experiment.config import ExperimentConfig

#: Sub-folder of a run folder that holds a torch model's Trainer output (checkpoint/, log.csv,
#: curve.png).
TRAIN_SUBDIR = "training"


def _latest_resumable(cfg: ExperimentConfig, runs: Path = Path("runs")) -> Path:
    """The newest ``runs/*-train-<model>*`` folder with a training checkpoint whose config.json
    describes the same experiment as ``cfg``; a ConfigError when there is none (naming how the
    newest candidate differs)."""
    from fusionrec.errors import ConfigError
    from fusionrec.experiment.resume import config_differences, saved_config
    from fusionrec.training._checkpoint import CHECKPOINT_DIR

    name = cfg.model.name
    found = sorted(
        (p for p in runs.glob(f"*-train-{name}*") if (p / TRAIN_SUBDIR / CHECKPOINT_DIR).is_dir()),
        key=lambda p: p.name,
        reverse=True,
    )
    if not found:
        raise ConfigError(
            f"--resume: no run folder under ./runs/ holds a checkpoint of {name!r}; pass --run-dir DIR"
        )
    first_diff: tuple[Path, list[str]] | None = None
    for run in found:
        saved = saved_config(run)
        diff = ["config.json: missing"] if saved is None else config_differences(saved, cfg)
        if not diff:
            return run
        first_diff = first_diff or (run, diff)
    run, diff = first_diff  # type: ignore[misc]
    raise ConfigError(
        f"--resume: none of the {len(found)} run folder(s) with a checkpoint of {name!r} was "
        f"trained with this config; the newest, {run}, differs in: {'; '.join(diff)}. "
        "Pass that run's config (or --run-dir DIR with its own config.json), or train afresh"
    )


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
        "--run-dir, else the newest ./runs/*-train-<model> folder with a checkpoint trained with "
        "the same config); only a run whose config.json matches (model, params, data, eval, seed; "
        "the epoch budget may grow) is continued. The result equals an uninterrupted run.",
    ),
    device: str | None = typer.Option(
        None, "--device", help="auto, cpu, cuda or cuda:N (a run option: not saved with the model)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch intra-op threads on CPU (default: the model's, 1)."
    ),
    progress: bool = typer.Option(False, "--progress", help="Show a per-epoch progress bar."),
) -> None:
    """Train and evaluate the model described by a config; save it under OUTPUT/models/<name>."""
    from fusionrec.errors import ConfigError
    from fusionrec.experiment import RunOptions, run
    from fusionrec.experiment.config import load_config
    from fusionrec.experiment.resume import CONFIG_FILE, check_same_experiment

    overrides = list(set_) + ([f"data.protocol={protocol}"] if protocol else [])
    if config is None:
        if not (resume and output is not None):
            raise ConfigError(
                "--config is required (it may be left out only with --resume --run-dir DIR)"
            )
        config = output / CONFIG_FILE
        if not config.is_file():
            raise ConfigError(f"cannot resume {output}: it has no config.json (pass --config)")
    cfg = load_config(config, overrides)
    if resume:
        from fusionrec.models.registry import get_model
        from fusionrec.models.torch_base import TorchRecommender

        if output is None:
            output = _latest_resumable(cfg)
        elif not output.is_dir():
            raise ConfigError(f"--resume: run folder {output} does not exist")
        if not issubclass(get_model(cfg.model.name), TorchRecommender):
            raise ConfigError(f"cannot resume model {cfg.model.name!r}: it is not trained by epochs")
        check_same_experiment(output, cfg, "resume")
        console.print(f"resuming {output}")
    elif output is not None:
        check_same_experiment(output, cfg, "train into")  # never overwrite another run's config
    run_dir = new_run_dir(f"train-{cfg.model.name}", output)
    atomic_write_text(run_dir / CONFIG_FILE, cfg.model_dump_json(indent=2))
    options = RunOptions(
        output_dir=run_dir,
        train_dir=run_dir / TRAIN_SUBDIR,
        resume=resume,
        device=device,
        cpu_threads=threads,
        progress=True if progress else None,
    )
    res = run(cfg, options)  # KeyboardInterrupt propagates: the entry point exits 130
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
