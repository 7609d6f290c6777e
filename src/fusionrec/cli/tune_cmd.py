"""``fusionrec tune --config FILE --trials N``: Optuna search over the config's ``tune:`` space."""

from __future__ import annotations

from pathlib import Path

import typer

from fusionrec.cli._common import console, new_run_dir


def tune_cmd(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Experiment config with a 'tune:' section (YAML/TOML/JSON)."
    ),
    trials: int | None = typer.Option(
        None, "--trials", "-n", min=1, help="Trials to run (default: tune.n_trials)."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override, e.g. --set train.epochs=5 (repeatable)."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Output folder (default: new folder under ./runs/)."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: sqlite:///OUTPUT/tune.db)."
    ),
    study_name: str | None = typer.Option(
        None, "--study-name", help="Study name (an existing one is continued)."
    ),
) -> None:
    """Search hyper-parameters; write best_config.yaml, trials.csv and history.png to OUTPUT."""
    import optuna
    from pydantic import ValidationError

    from fusionrec.errors import ConfigError
    from fusionrec.experiment.config import load_config
    from fusionrec.experiment.tuning import tune
    from fusionrec.experiment.tuning_config import TuneConfig

    cfg = load_config(config, list(set_))
    if not cfg.tune:
        raise ConfigError(f"{config}: no 'tune:' section (it needs at least a 'space')")
    try:
        tc = TuneConfig.model_validate(cfg.tune)
    except ValidationError as e:
        msg = "; ".join(
            f"tune.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{config}: {msg}") from None
    out = new_run_dir(f"tune-{cfg.model.name}", output)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = cfg.model_dump(mode="json", exclude={"tune"})
    console.print(
        f"tuning {cfg.model.name} on {cfg.data.name}: {trials or tc.n_trials} trials, {tc.direction} valid {tc.metric}"
        + (" (trial 0: the config's own values)" if tc.baseline_trial else "")
    )
    res = tune(
        base,
        tc,
        n_trials=trials,
        output_dir=out,
        storage=storage,
        study_name=study_name,
        on_trial=lambda line: console.print(line, highlight=False, soft_wrap=True),
    )
    console.print(
        f"best valid {tc.metric} = {res.best_value:.4f} ({res.n_complete} complete, {res.n_pruned} pruned)"
    )
    for k, v in res.best_params.items():
        console.print(f"  {k} = {v}")
    console.print(f"best config: {out / 'best_config.yaml'}; history plot: {out / 'history.png'}")


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_cmd)
