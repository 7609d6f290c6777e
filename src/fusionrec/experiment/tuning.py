"""Hyper-parameter search with Optuna over a plain experiment-config dict.

``tune(base_config, space, n_trials, output_dir)`` samples each parameter of ``space`` (dotted
paths into the config dict), runs ``objective(config_dict, report)`` per trial and writes into
``output_dir``: ``tune.db`` (the default SQLite storage), ``best_config.yaml`` (the base config
with the best parameters, ready for ``fusionrec train``), ``trials.csv`` and ``history.png``
(optimisation history). The default objective fits the configured model on the split's train
part and returns the validation metric; torch models report it every epoch through a Trainer
callback so a ``MedianPruner`` can stop unpromising trials early.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionrec.errors import ConfigError
from fusionrec.experiment.tuning_config import ParamSpec, TuneConfig

__all__ = ["tune", "TuneResult", "default_objective", "set_path", "Objective"]

log = logging.getLogger(__name__)

# objective(config_dict, report) -> metric; report(epoch, value) may raise optuna.TrialPruned
Objective = Callable[[dict[str, Any], Callable[[int, float], None]], float]


@dataclass
class TuneResult:
    """Outcome of a search."""

    best_params: dict[str, Any]
    best_value: float
    best_config: dict[str, Any]
    n_complete: int
    n_pruned: int
    output_dir: Path
    study: Any  # optuna.Study


def set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """Set ``config['a']['b'] = value`` for ``path='a.b'``, creating sections as needed."""
    node = config
    parts = path.split(".")
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"search path {path!r}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = value


def _suggest(trial, name: str, spec: ParamSpec) -> Any:
    if spec.type == "categorical":
        return trial.suggest_categorical(name, spec.choices)
    if spec.type == "int":
        step = int(spec.step) if spec.step is not None else 1
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=step, log=spec.log)
    return trial.suggest_float(
        name, float(spec.low), float(spec.high), step=spec.step, log=spec.log
    )


class _DataCache:
    """Loads and splits the dataset once per distinct data/seed section across trials."""

    def __init__(self, dataset=None) -> None:
        self.dataset = dataset
        self._prepared: dict[str, Any] = {}

    def get(self, cfg):
        """The ``PreparedData`` of ``cfg``'s data section and seed (each trial then fits on it,
        ``data.augment`` applied by the runner as in ``fusionrec train``)."""
        from fusionrec.experiment.runner import prepare

        key = json.dumps([cfg.data.model_dump(mode="json", exclude={"augment"}), cfg.seed], sort_keys=True)
        if key not in self._prepared:
            self._prepared[key] = prepare(cfg.data, cfg.seed, self.dataset)
        return self._prepared[key]


def _trial_config(config: dict[str, Any], metric: str) -> Any:
    """The trial's ExperimentConfig: evaluated on ``metric`` only; a torch model watches the same
    metric for early stopping unless its params say otherwise."""
    from fusionrec.evaluation.evaluator import parse_metric
    from fusionrec.experiment.config import config_from_dict
    from fusionrec.models.registry import get_model

    m_name, k = parse_metric(metric)
    cfg = copy.deepcopy(config)
    cfg["eval"] = {**cfg.get("eval", {}), "metrics": [m_name], "ks": [k]}
    name = (cfg.get("model") or {}).get("name")
    if isinstance(name, str):
        fields = get_model(name).Config.model_fields
        params = cfg["model"].setdefault("params", {})
        if "early_stop_metric" in fields and "early_stop_metric" not in {**cfg.get("train", {}), **params}:
            params["early_stop_metric"] = metric
    return config_from_dict(cfg, source="trial config")


def default_objective(metric: str = "ndcg@10", dataset=None, options=None) -> Objective:
    """Run ``config`` through ``fusionrec.experiment.run`` and return ``metric`` on the split's
    valid part (full ranking, train items masked). A torch model watches the same metric for
    early stopping unless its params say otherwise, and reports it each epoch to ``report``
    (the pruner). ``dataset`` replaces loading ``config['data']['name']``; ``options`` (a
    ``RunOptions``) sets the device/threads of every trial."""
    from fusionrec.evaluation.evaluator import parse_metric
    from fusionrec.experiment.options import RunOptions

    m_name, k = parse_metric(metric)
    metric = f"{m_name}@{k}"
    cache = _DataCache(dataset)
    base = options or RunOptions()

    def objective(config: dict[str, Any], report: Callable[[int, float], None]) -> float:
        from fusionrec.experiment import runner

        cfg = _trial_config(config, metric)
        key = f"valid_{cfg.model_params().get('early_stop_metric', metric)}"

        def cb(epoch: int, rec: dict) -> None:
            if key in rec:
                report(epoch, float(rec[key]))

        opts = base.replace(stage="valid", output_dir=None, callbacks=(*base.callbacks, cb))
        res = runner.run(cfg, opts, cache.get(cfg))
        return float(res.metrics[metric])

    return objective


def tune(
    base_config: Mapping[str, Any],
    space: Mapping[str, Any] | TuneConfig,
    n_trials: int | None = None,
    output_dir: str | Path = "tune",
    storage: str | None = None,
    study_name: str | None = None,
    objective: Objective | None = None,
    dataset=None,
    on_trial: Callable[[str], None] | None = None,
    **settings: Any,
) -> TuneResult:
    """Run an Optuna search.

    Args:
        base_config: an experiment config as a plain dict (its ``tune`` key is ignored).
        space: a ``TuneConfig``, or a mapping of dotted path -> parameter spec (then the other
            ``TuneConfig`` fields come from ``settings``, e.g. ``metric="recall@20"``).
        n_trials: trials to run now (default: the TuneConfig's ``n_trials``).
        output_dir: where tune.db, best_config.yaml, trials.csv and history.png go.
        storage: Optuna storage URL (default ``sqlite:///<output_dir>/tune.db``).
        study_name: study name (default: the TuneConfig's); an existing study is continued.
        objective: ``objective(config_dict, report) -> value`` (default: ``default_objective``).
        dataset: a Dataset used instead of loading ``data.name`` (default objective only).
        on_trial: gets one line after each trial (its outcome, the best so far, the time per
            trial and the most time left).
    """
    import optuna

    tc = space if isinstance(space, TuneConfig) else TuneConfig(space=dict(space), **settings)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or tc.storage or f"sqlite:///{(out / 'tune.db').resolve()}"
    base = copy.deepcopy(dict(base_config))
    base.pop("tune", None)
    objective = objective or default_objective(tc.metric, dataset)
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=tc.pruner_startup_trials, n_warmup_steps=tc.pruner_warmup_epochs
        )
        if tc.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name=study_name or tc.study_name,
        storage=storage,
        direction=tc.direction,
        sampler=optuna.samplers.TPESampler(seed=tc.sampler_seed),
        pruner=pruner,
        load_if_exists=True,
    )

    if tc.baseline_trial and not study.trials:
        start = _base_point(base, tc)
        if start:
            study.enqueue_trial(start)

    def run(trial: optuna.Trial) -> float:
        cfg = copy.deepcopy(base)
        for path, spec in tc.space.items():
            set_path(cfg, path, _suggest(trial, path, spec))

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({tc.metric}={value:.4f})")

        return objective(cfg, report)

    total = n_trials or tc.n_trials
    callbacks = [] if on_trial is None else [_TrialLog(on_trial, total, tc.metric)]
    study.optimize(
        run,
        n_trials=total,
        timeout=tc.timeout_s,
        catch=(FloatingPointError,),  # a diverging trial fails; the search goes on
        gc_after_trial=False,
        callbacks=callbacks,
    )
    states = [t.state for t in study.trials]
    n_complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    n_pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states)
    if n_complete == 0:
        raise ConfigError(
            f"no trial of study {study.study_name!r} completed ({n_pruned} pruned); see the log"
        )
    best = study.best_trial
    best_cfg = copy.deepcopy(base)
    for path, value in best.params.items():
        set_path(best_cfg, path, value)
    _write_outputs(out, study, best_cfg, tc)
    return TuneResult(best.params, float(best.value), best_cfg, n_complete, n_pruned, out, study)


class _TrialLog:
    """optuna callback: one line per finished trial of this call."""

    def __init__(self, say: Callable[[str], None], total: int, metric: str) -> None:
        import time

        self.say, self.total, self.metric = say, total, metric
        self.t0, self.done = time.perf_counter(), 0

    def __call__(self, study: Any, trial: Any) -> None:
        import time

        from fusionrec.experiment.progress import format_duration

        self.done += 1
        per = (time.perf_counter() - self.t0) / self.done
        state = trial.state.name.lower()
        what = f"{self.metric} {trial.value:.4f}" if trial.value is not None else state
        if state == "pruned" and trial.intermediate_values:
            last = max(trial.intermediate_values)
            what = f"pruned at epoch {last} ({self.metric} {trial.intermediate_values[last]:.4f})"
        try:
            best = f" · best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:  # no complete trial yet
            best = ""
        left = self.total - self.done
        eta = f" · about {format_duration(left * per)} left" if left > 0 else ""
        self.say(f"trial {trial.number} ({self.done}/{self.total}): {what}{best} · {per:.0f} s/trial{eta}")


def _fits(spec: ParamSpec, value: Any) -> bool:
    if spec.type == "categorical":
        return value in (spec.choices or [])
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if spec.type == "int" and float(value) != int(value):
        return False
    return float(spec.low) <= float(value) <= float(spec.high)  # type: ignore[arg-type]


def _base_point(base: dict[str, Any], tc: TuneConfig) -> dict[str, Any]:
    """The searched parameters' values in ``base`` (the model's defaults for params the config
    leaves out), for the ones inside the search space."""
    from fusionrec.experiment.config import config_from_dict
    from fusionrec.models.registry import get_model

    cfg = config_from_dict(base, source="base config")
    full = cfg.model_dump(mode="json")
    model_cfg = get_model(cfg.model.name).Config
    resolved = model_cfg(**cfg.model_params()).model_dump(mode="json")
    aliases = model_cfg.aliases() if hasattr(model_cfg, "aliases") else {}
    point: dict[str, Any] = {}
    for path, spec in tc.space.items():
        parts = path.split(".")
        if parts[:2] == ["model", "params"] or parts[0] == "train":
            key = parts[-1] if parts[0] == "train" else ".".join(parts[2:])
            value = resolved.get(aliases.get(key, key))
        else:
            value = full
            for p in parts:
                value = value.get(p) if isinstance(value, dict) else None
        if value is not None and _fits(spec, value):
            point[path] = int(value) if spec.type == "int" else value
    return point


def _write_outputs(out: Path, study, best_cfg: dict[str, Any], tc: TuneConfig) -> None:
    import yaml

    tmp = out / ".best_config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(best_cfg, sort_keys=False))
    tmp.replace(out / "best_config.yaml")
    df = study.trials_dataframe()
    df.to_csv(out / "trials.csv", index=False)
    _history_png(out / "history.png", study, tc)


def _history_png(path: Path, study, tc: TuneConfig) -> None:
    """Optimisation history: each complete trial's value and the best so far (matplotlib Agg)."""
    import optuna
    from matplotlib.figure import Figure

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [
        t
        for t in study.trials
        if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values
    ]
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    xs = [t.number for t in done]
    ys = [t.value for t in done]
    ax.scatter(xs, ys, label=f"trial {tc.metric}", color="tab:blue")
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
            label="pruned (last reported)",
            color="tab:gray",
            marker="x",
        )
    better = max if tc.direction == "maximize" else min
    best_so_far, cur = [], None
    for y in ys:
        cur = y if cur is None else better(cur, y)
        best_so_far.append(cur)
    ax.step(xs, best_so_far, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"valid {tc.metric}")
    ax.set_title(f"optimisation history · {study.study_name}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
