"""Typed experiment configuration, loaded from YAML/TOML; model params validated against the model.

Example (YAML)::

    data: {name: ml-100k, protocol: rs, ratios: [0.8, 0.1, 0.1]}
    model: {name: bpr, params: {embedding_dim: 64}}
    train: {epochs: 50, lr: 0.005}      # merged into a torch model's params
    eval: {metrics: [recall, ndcg], ks: [10, 20]}
    run: {device: auto, cpu_threads: 1}  # how it runs (never saved with the model)
    seed: 2020
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fusionrec.data.augmentation import AugmentConfig
from fusionrec.errors import ConfigError

__all__ = [
    "ExperimentConfig",
    "DataConfig",
    "ModelSpec",
    "EvalConfig",
    "ServeConfig",
    "RunSection",
    "load_config",
    "apply_overrides",
    "config_from_dict",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class DataConfig(_Strict):
    name: str = "ml-100k"
    """A registered dataset name (ml-100k, ml-1m, ...) or a path (atomic folder, MovieLens folder, saved Dataset, CSV/Parquet)."""
    protocol: Literal["rs", "temporal", "global-temporal", "loo", "cold-item"] = "rs"
    """Split protocol (rs = RecBole's per-user random 8:1:1)."""
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Train/valid/test ratios for ratio-based protocols."""
    min_rating: float | None = None
    """Drop interactions rated below this (reported); None keeps all."""
    user_core: int = Field(0, ge=0)
    """k-core filter: keep users with at least this many interactions (0 = off)."""
    item_core: int = Field(0, ge=0)
    """k-core filter: keep items with at least this many interactions (0 = off)."""
    pii: Literal["keep", "generalise", "drop"] = "keep"
    """Personal user columns at load (``fusionrec.privacy.pii``): ``generalise`` cuts zip codes to
    their first digit and exact ages to bands, ``drop`` removes both columns, ``keep`` leaves them."""
    augment: AugmentConfig | None = None
    """Interaction augmentation of the TRAINING split only (``edge_dropout``, ``edge_substitute``,
    ``substitute_mode``); validation/test and seen-item masking use the real interactions.
    Sequence ops (``ops``) belong to a sequential model's own ``augment`` setting."""

    @field_validator("augment")
    @classmethod
    def _edge_ops_only(cls, v: AugmentConfig | None) -> AugmentConfig | None:
        if v is not None and v.ops:
            raise ValueError(
                "data.augment takes interaction augmentation (edge_dropout, edge_substitute); "
                "sequence ops go in the model's own `augment` setting (e.g. sasrec)"
            )
        if v is not None and v.edge_dropout == 0 and v.edge_substitute == 0:
            raise ValueError("data.augment needs edge_dropout and/or edge_substitute > 0")
        return v


class ModelSpec(_Strict):
    name: str
    """Registered model name (see `fusionrec models`)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Model hyper-parameters, validated against the model's config."""


class EvalConfig(_Strict):
    metrics: list[str] = Field(
        default_factory=lambda: ["recall", "ndcg", "mrr", "hit", "precision"]
    )
    """Metrics (names in fusionrec.evaluation.METRICS): top-k accuracy (recall, ndcg, mrr, hit,
    precision, map), beyond-accuracy (itemcoverage, giniindex, shannonentropy, tailpercentage,
    averagepopularity, ild, novelty, serendipity, calibration), fairness (exposure, ndcg_gap),
    CTR (auc, gauc, logloss) and rating (rmse, mae)."""
    ks: list[int] = Field(default_factory=lambda: [10])
    """Cut-offs."""
    batch_size: int = Field(1024, ge=1)
    """Users scored at once."""
    rerank: str | None = None
    """Re-ranker applied before the metrics, e.g. ``mmr:0.3``, ``calibrated:0.5``, ``fair:0.5``
    (see fusionrec.rerank); None = the model's own ranking."""
    protocol: str = Field("full", validation_alias=AliasChoices("protocol", "mode"))
    """``full`` ranking over every item (default), or a sampled protocol as RecBole's ``mode``
    names it: ``uni100`` / ``pop100`` (each held-out item against 100 sampled unseen items,
    uniform or by popularity; any N). Sampled results are labelled so (docs/scale.md)."""

    @field_validator("metrics")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from fusionrec.evaluation.registry import validate_metric_names

        return validate_metric_names(v)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str) -> str:
        from fusionrec.evaluation.sampled import parse_protocol

        p = parse_protocol(v)
        return "full" if p is None else p.name

    @field_validator("rerank")
    @classmethod
    def _rerank_spec(cls, v: str | None) -> str | None:
        from fusionrec.rerank.spec import parse_rerank_spec

        return None if v is None else parse_rerank_spec(v).text


class ServeConfig(_Strict):
    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = Field(8000, ge=1, le=65535)
    """Port to bind."""


class RunSection(_Strict):
    """Run settings read from a config file (``fusionrec.experiment.RunOptions`` overrides them).
    They describe the machine, not the model: never saved in a model folder, and ignored when
    ``train --resume`` compares a run's config with the one given."""

    device: str | None = None
    """'auto', 'cpu', 'cuda' or 'cuda:N' (None = the model's default)."""
    cpu_threads: int | None = Field(None, ge=1)
    """Torch intra-op threads while fitting on CPU (None = the model's default)."""
    progress: bool | None = None
    """Per-epoch progress bar (None = the model's default)."""

    @field_validator("device")
    @classmethod
    def _device(cls, v: str | None) -> str | None:
        if v is not None and v not in ("auto", "cpu", "cuda") and not (
            v.startswith("cuda:") and v[5:].isdigit()
        ):
            raise ValueError("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return v


class ExperimentConfig(_Strict):
    data: DataConfig = Field(default_factory=DataConfig)
    """Dataset and split."""
    model: ModelSpec
    """Model name and params."""
    train: dict[str, Any] = Field(default_factory=dict)
    """Trainer settings (epochs, lr, ...) merged into a torch model's params."""
    eval: EvalConfig = Field(default_factory=EvalConfig)
    """Evaluation settings."""
    serve: ServeConfig = Field(default_factory=ServeConfig)
    """Service settings."""
    run: RunSection = Field(default_factory=RunSection)
    """How the experiment runs (device, threads, progress); not part of the model."""
    seed: int = 2020
    """Seed for the split and the model fit."""
    tune: dict[str, Any] | None = None
    """Hyper-parameter search settings (see `fusionrec tune`)."""

    @model_validator(mode="after")
    def _validate_model_params(self) -> ExperimentConfig:
        self.model_params()  # raises ConfigError naming the bad key
        return self

    def model_params(self) -> dict[str, Any]:
        """The model's params with the ``train`` section merged in, validated."""
        from fusionrec.models.registry import get_model

        cls = get_model(self.model.name)
        fields = cls.Config.model_fields
        legacy = _RUN_KEYS  # run settings older configs kept in train: (see run_settings())
        unknown_train = [k for k in self.train if k not in fields and k not in legacy]
        if unknown_train:
            raise ConfigError(
                f"train.{unknown_train[0]} is not a setting of model {self.model.name!r} "
                f"(its settings: {', '.join(sorted(fields)) or 'none'})"
            )
        params = {
            k: v for k, v in {**self.train, **self.model.params}.items() if k in fields or k not in legacy
        }
        try:
            cls.Config(**params)
        except ValidationError as e:
            msg = "; ".join(
                f"model.params.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
            )
            raise ConfigError(f"invalid parameters for model {self.model.name!r}: {msg}") from None
        return params

    def run_settings(self) -> dict[str, Any]:
        """device/cpu_threads/progress that this config sets: the ``run:`` section, else the
        same keys in ``train:`` or ``model.params`` (older configs) when the model's config does
        not have them."""
        from fusionrec.models.registry import get_model

        fields = get_model(self.model.name).Config.model_fields
        merged = {**self.train, **self.model.params}
        out = {k: merged[k] for k in _RUN_KEYS if k in merged and k not in fields}
        out.update({k: v for k, v in self.run.model_dump().items() if v is not None})
        return out


#: run settings (kept in step with fusionrec.experiment.options.RUN_OPTION_KEYS)
_RUN_KEYS = ("device", "cpu_threads", "progress")


def config_from_dict(d: dict[str, Any], source: str = "config") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(d)
    except ValidationError as e:
        msg = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{source}: {msg}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load YAML/TOML/JSON, apply ``--set`` style overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            d = tomllib.loads(text)
        elif path.suffix == ".json":
            d = json.loads(text)
        else:
            d = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot parse ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config_from_dict(apply_overrides(d, overrides or []), source=str(path))


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested dict copy."""
    out = json.loads(json.dumps(d))
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} must look like key.path=value")
        key, raw = ov.split("=", 1)
        value = yaml.safe_load(raw)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {ov!r}: {p!r} is not a section")
            node = nxt
        node[parts[-1]] = value
    return out
