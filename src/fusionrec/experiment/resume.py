"""Which run folder ``train --resume`` may continue: only one whose saved config describes the
same experiment (model, params, data, evaluation, seed) as the config given.

Run settings (the ``run:`` section and the older ``device``/``cpu_threads``/``progress`` keys)
and the ``serve``/``tune`` sections are ignored, and so is the epoch budget
(``train.epochs``/``model.params.epochs``): resuming with more epochs extends the same run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fusionrec.errors import ConfigError
from fusionrec.experiment.config import ExperimentConfig, load_config
from fusionrec.experiment.options import RUN_OPTION_KEYS

__all__ = ["CONFIG_FILE", "config_differences", "check_same_experiment", "saved_config"]

#: the config a run folder was trained with
CONFIG_FILE = "config.json"
_IGNORED_SECTIONS = ("run", "serve", "tune")
_BUDGET_KEYS = ("epochs",)


def _comparable(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config with the model's params resolved through its config class (defaults filled
    in, deprecated names mapped, ``train:`` merged), so equal settings compare equal however
    they were written."""
    from fusionrec.models.registry import get_model

    d = cfg.model_dump(mode="json", exclude={*_IGNORED_SECTIONS, "train", "model"})
    resolved = get_model(cfg.model.name).Config(**cfg.model_params()).model_dump(mode="json")
    for k in (*RUN_OPTION_KEYS, *_BUDGET_KEYS):
        resolved.pop(k, None)
    d["model"] = {"name": cfg.model.name, "params": resolved}
    return d


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def config_differences(saved: ExperimentConfig, wanted: ExperimentConfig) -> list[str]:
    """``"key: saved -> wanted"`` for every setting that differs (dotted keys, sorted); run
    settings and the epoch budget are not compared."""
    a, b = _flatten(_comparable(saved)), _flatten(_comparable(wanted))
    missing = object()
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, missing), b.get(key, missing)
        if x != y:
            fmt = lambda v: "(unset)" if v is missing else json.dumps(v)  # noqa: E731
            out.append(f"{key}: {fmt(x)} -> {fmt(y)}")
    return out


def saved_config(run_dir: Path) -> ExperimentConfig | None:
    """The config a run folder was trained with, or None when it has none."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return load_config(path)
    except ConfigError as e:
        raise ConfigError(f"{path} is not a valid experiment config ({e})") from None


def check_same_experiment(run_dir: Path, wanted: ExperimentConfig, action: str) -> None:
    """Raise a ``ConfigError`` naming the differing keys when ``run_dir`` holds a config.json of
    another experiment; ``action`` says what was refused (e.g. "resume")."""
    saved = saved_config(run_dir)
    if saved is None:
        return
    diff = config_differences(saved, wanted)
    if diff:
        raise ConfigError(
            f"cannot {action} {run_dir}: its {CONFIG_FILE} describes another experiment "
            f"(saved -> given: {'; '.join(diff)}); pass the run's own config or another --run-dir"
        )
