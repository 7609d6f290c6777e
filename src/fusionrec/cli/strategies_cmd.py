"""``fusionrec ensemble`` and ``fusionrec distill``: fuse models, or distill a teacher into a
small student, on a dataset split; evaluate on test and save the result like any model.

Both are also plain registered models ("ensemble", "distill", "multitask",
"label_propagation"), so ``fusionrec train --config`` drives them from YAML as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fusionrec.cli._common import console, metrics_table, new_run_dir, parse_list


def _params(pairs: list[str]) -> dict:
    from fusionrec.errors import ConfigError

    out = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"--param must look like key=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def _run(name: str, params: dict, data: str, seed: int, output: Path | None) -> None:
    from fusionrec.experiment import RunOptions, run
    from fusionrec.experiment.config import DataConfig, ExperimentConfig, ModelSpec

    cfg = ExperimentConfig(data=DataConfig(name=data), model=ModelSpec(name=name, params=params), seed=seed)
    run_dir = new_run_dir(name, output)
    res = run(cfg, RunOptions(output_dir=run_dir))  # writes run_dir/metrics.json
    cols = [f"{m}@{k}" for k in cfg.eval.ks for m in cfg.eval.metrics]
    console.print(
        metrics_table(
            f"{data} · {cfg.data.protocol}", [res.as_dict()], cols, [("fit_seconds", "fit s")]
        )
    )
    console.print(f"model saved to {res.model_dir}")


def ensemble_cmd(
    members: str = typer.Option(
        "ease,itemknn", "--members", help="Comma-separated registered model names (default params)."
    ),
    method: str = typer.Option("weighted", "--method", help="weighted, rrf or stacked."),
    normalisation: str = typer.Option(
        "zscore", "--normalisation", help="zscore, minmax, rank or none."
    ),
    weights: str | None = typer.Option(
        None, "--weights", help="Fixed comma-separated weights (default: learned on valid)."
    ),
    data: str = typer.Option("ml-100k", "--data", help="Dataset name or path."),
    seed: int = typer.Option(2020, "--seed"),
    output: Path | None = typer.Option(
        None, "--output", help="Run folder (default: new under ./runs/)."
    ),
) -> None:
    """Fit an ensemble of models; weights are learned on the validation split, never on test."""
    from fusionrec.errors import ConfigError

    names = parse_list(members)
    if not names:
        raise ConfigError("--members needs at least one model name")
    params = {
        "members": [{"name": n} for n in names],
        "method": method,
        "normalisation": normalisation,
    }
    if weights:
        try:
            params["weights"] = [float(w) for w in parse_list(weights)]
        except ValueError:
            raise ConfigError(f"--weights must be numbers, got {weights!r}") from None
    _run("ensemble", params, data, seed, output)


def distill_cmd(
    teacher: str | None = typer.Option(
        None, "--teacher", help="Registered teacher model name, fitted on the same split."
    ),
    teacher_path: Path | None = typer.Option(
        None, "--teacher-path", help="Saved teacher folder (fitted on the same split)."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="Student/distillation setting key=value, e.g. lam=0.5 (repeatable)."
    ),
    data: str = typer.Option("ml-100k", "--data", help="Dataset name or path."),
    seed: int = typer.Option(2020, "--seed"),
    output: Path | None = typer.Option(
        None, "--output", help="Run folder (default: new under ./runs/)."
    ),
) -> None:
    """Distill a teacher into a small MF student (see the 'distill' model's parameters)."""
    params = _params(param)
    if teacher:
        params["teacher"] = {"name": teacher}
    if teacher_path is not None:
        params["teacher_path"] = str(teacher_path)
    _run("distill", params, data, seed, output)


def register(app: typer.Typer) -> None:
    app.command("ensemble")(ensemble_cmd)
    app.command("distill")(distill_cmd)
