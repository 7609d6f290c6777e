"""Typed ``tune:`` section of an experiment config (hyper-parameter search with Optuna).

Example (YAML)::

    tune:
      metric: ndcg@10            # validation metric, full ranking
      direction: maximize
      n_trials: 20
      space:
        model.params.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
        model.params.embedding_dim: {type: categorical, choices: [32, 64, 128]}
        train.epochs: {type: int, low: 5, high: 40, step: 5}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ParamSpec", "TuneConfig"]


class ParamSpec(BaseModel):
    """One searched parameter."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: Literal["float", "int", "categorical"]
    """Distribution kind."""
    low: float | None = None
    """Lower bound (float/int)."""
    high: float | None = None
    """Upper bound, inclusive (float/int)."""
    log: bool = False
    """Sample on a log scale (float/int)."""
    step: float | None = None
    """Grid step (float/int; not with log)."""
    choices: list[Any] | None = None
    """Values to choose from (categorical): numbers, strings, booleans or null."""

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale parameter needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("'step' cannot be combined with log: true")
        return self


class TuneConfig(BaseModel):
    """Settings of ``fusionrec tune``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    space: dict[str, ParamSpec]
    """Searched parameters by dotted config path, e.g. 'model.params.lr' or 'train.epochs'."""
    metric: str = "ndcg@10"
    """Validation metric the search optimises (full ranking on the split's valid part)."""
    direction: Literal["maximize", "minimize"] = "maximize"
    """Whether a larger metric is better."""
    n_trials: int = Field(20, ge=1)
    """Trials to run (the CLI's --trials overrides it)."""
    timeout_s: float | None = Field(None, gt=0)
    """Stop starting new trials after this many seconds (None = no limit)."""
    storage: str | None = None
    """Optuna storage URL (any SQLAlchemy database URL); None = sqlite:///<output>/tune.db."""
    study_name: str = "fusionrec"
    """Study name inside the storage; an existing study of that name is continued."""
    sampler_seed: int | None = 0
    """Seed of the TPE sampler (None = not reproducible)."""
    pruner: Literal["median", "none"] = "median"
    """Stop unpromising trials early on the per-epoch validation metric (torch models)."""
    pruner_startup_trials: int = Field(2, ge=0)
    """Complete trials before pruning starts."""
    pruner_warmup_epochs: int = Field(2, ge=0)
    """Epochs of each trial that are never pruned."""
    baseline_trial: bool = True
    """Trial 0 of a new study runs the base config's own values (the model's defaults where the
    config sets none), so the best trial is never worse on validation than not tuning."""

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        from fusionrec.evaluation.evaluator import parse_metric

        parse_metric(v)
        return v.lower()

    @field_validator("space")
    @classmethod
    def _paths(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        if not v:
            raise ValueError("the search space is empty")
        for key in v:
            top = key.split(".", 1)[0]
            if top not in ("model", "train", "data", "eval", "seed") or key.startswith(
                "model.name"
            ):
                raise ValueError(
                    f"{key!r}: searched paths start with model.params., train., data. or eval."
                )
        return v
