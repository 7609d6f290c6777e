"""How and where an experiment runs (never what the model is): ``RunOptions``.

Run options travel beside an ``ExperimentConfig``, never inside a saved model: the device, torch
threads, progress bar, the run folder, resume and per-epoch callbacks (a tuning pruner, a
progress line). ``fusionrec.experiment.run`` hands the fit-time part to the model as
``fusionrec.training.FitOptions`` (``model.fit(train, valid, seed=s, options=...)``, in
``fit_model``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fusionrec.errors import ConfigError
from fusionrec.training.options import FitOptions

if TYPE_CHECKING:
    from fusionrec.data.dataset import Dataset
    from fusionrec.data.splits import Split
    from fusionrec.evaluation.evaluator import EvalResult
    from fusionrec.models.base import Recommender

__all__ = ["RunOptions", "RUN_OPTION_KEYS", "EpochCallback", "fit_model", "make_model"]

#: per-epoch callback: ``cb(epoch, record)`` with the Trainer's record (loss, valid_<metric>,
#: seconds, ...). It may raise (a tuning pruner raises ``optuna.TrialPruned``).
EpochCallback = Callable[[int, dict], None]

#: Run settings that older configs carried as model/Trainer fields (``train.device`` ...).
RUN_OPTION_KEYS: tuple[str, ...] = ("device", "cpu_threads", "progress")


@dataclass(frozen=True)
class RunOptions:
    """Run settings of ``fusionrec.experiment.run`` (none of them is saved with the model).

    ``None`` for ``device``/``cpu_threads``/``progress`` means "not set here": the config's
    ``run:`` section, then the model's own default, decides."""

    device: str | None = None
    """'auto', 'cpu', 'cuda' or 'cuda:N' for torch models."""
    cpu_threads: int | None = None
    """Torch intra-op threads while fitting on CPU."""
    progress: bool | None = None
    """Show the Trainer's per-epoch progress bar."""
    output_dir: Path | None = None
    """Run folder: the model is saved under ``output_dir/models/<name>`` (with experiment.json
    and history.csv) and ``run`` writes ``output_dir/metrics.json``. None = save nothing."""
    train_dir: Path | None = None
    """A torch model's Trainer folder (checkpoint per epoch, log.csv, curve.png)."""
    resume: bool = False
    """Continue from ``train_dir``'s last checkpoint (torch models only)."""
    callbacks: tuple[EpochCallback, ...] = ()
    """Per-epoch callbacks given to the Trainer (torch models; others ignore them)."""
    stage: Literal["test", "valid"] = "test"
    """Which part of the split the fitted model is evaluated on (tuning uses 'valid')."""
    keep_topk: bool = False
    """Keep every evaluated user's top-k (for ``export_recommendations``)."""
    evaluate: Callable[[Recommender, Split], EvalResult] | None = None
    """Replace the configured evaluation (e.g. a benchmark that masks extra items)."""
    write_metrics: bool = True
    """With ``output_dir``: write ``output_dir/metrics.json`` (``run_many`` turns it off)."""

    def __post_init__(self) -> None:
        if (
            self.device is not None
            and self.device not in ("auto", "cpu", "cuda")
            and not (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ConfigError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ConfigError(f"cpu_threads must be >= 1, got {self.cpu_threads}")
        if self.stage not in ("test", "valid"):
            raise ConfigError(f"stage must be 'test' or 'valid', got {self.stage!r}")
        if self.resume and self.train_dir is None:
            raise ConfigError("resume needs a train_dir (the run's Trainer folder)")
        object.__setattr__(self, "callbacks", tuple(self.callbacks))
        for name in ("output_dir", "train_dir"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                object.__setattr__(self, name, Path(v))

    def replace(self, **changes: Any) -> RunOptions:
        return dataclasses.replace(self, **changes)

    def with_defaults(self, run: Mapping[str, Any]) -> RunOptions:
        """Fill the settings left unset here from ``run`` (a config's ``run:`` section)."""
        changes = {
            k: run[k]
            for k in RUN_OPTION_KEYS
            if getattr(self, k) is None and run.get(k) is not None
        }
        return self.replace(**changes) if changes else self

    def fit_settings(self) -> dict[str, Any]:
        """device/cpu_threads/progress that are set (FitOptions' defaults apply to the rest)."""
        return {k: getattr(self, k) for k in RUN_OPTION_KEYS if getattr(self, k) is not None}

    def fit_options(self) -> FitOptions:
        """The part of these options a model's ``fit`` takes."""
        return FitOptions(
            **self.fit_settings(),
            run_dir=self.train_dir,
            resume=self.resume,
            callbacks=tuple(self.callbacks),
        )


def make_model(name: str, params: Mapping[str, Any]) -> Recommender:
    """``get_model(name)(**params)``: a model is built from its params only."""
    from fusionrec.models.registry import get_model

    return get_model(name)(**params)


def fit_model(
    model: Recommender,
    train: Dataset,
    valid: Dataset | None,
    seed: int,
    options: RunOptions | None = None,
) -> Recommender:
    """``model.fit(train, valid, seed=seed, options=FitOptions(...))`` with the fit-time part of
    ``options``; ``resume`` on a model not trained by epochs is refused."""
    from fusionrec.models.torch_base import TorchRecommender

    opts = options or RunOptions()
    if opts.resume and not isinstance(model, TorchRecommender):
        raise ConfigError(f"cannot resume model {model.name!r}: it is not trained by epochs")
    return model.fit(train, valid, seed=seed, options=opts.fit_options())
