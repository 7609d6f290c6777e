"""The one experiment runner: load + split -> fit -> evaluate -> save.

``run(config, options, dataset)`` is the only place the chain is written; ``quickstart``,
``train``, ``ensemble``, ``distill``, every ``tune`` trial, every ablation variant and the
benchmarks call it (``run_many`` for several models on one split). ``config`` says what the
model and the experiment are; ``options`` (``RunOptions``) how and where it runs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec._fsutil import atomic_write_text
from fusionrec.data.augmentation import AugmentConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.splits import Split, split
from fusionrec.errors import ConfigError
from fusionrec.evaluation.evaluator import EvalResult, Evaluator
from fusionrec.experiment.config import DataConfig, EvalConfig, ExperimentConfig, ModelSpec
from fusionrec.experiment.options import RunOptions, fit_model, make_model
from fusionrec.models.base import Recommender
from fusionrec.models.registry import get_model

__all__ = [
    "RunResult",
    "PreparedData",
    "prepare",
    "prepare_data",
    "run",
    "run_many",
    "unmet_needs",
    "fit_and_evaluate",
    "run_experiment",
    "experiment_record",
    "training_data",
    "split_for_model_dir",
    "EXPERIMENT_FILE",
]

log = logging.getLogger(__name__)
EXPERIMENT_FILE = "experiment.json"


@dataclass
class RunResult:
    """One model's outcome. ``as_dict()`` is what metrics.json / leaderboard.json hold; the fitted
    model, its evaluation and the config ride along for the caller (not serialised)."""

    model: str
    metrics: dict[str, float]
    fit_seconds: float
    eval_seconds: float
    n_test_users: int
    model_dir: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None
    fit_cpu_seconds: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    stage: str = "test"
    eval_protocol: str = "full"  # 'full' ranking or the sampled protocol the metrics come from
    recommender: Recommender | None = field(default=None, repr=False, compare=False)
    evaluation: EvalResult | None = field(default=None, repr=False, compare=False)
    config: ExperimentConfig | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        keys = (
            "model", "metrics", "fit_seconds", "eval_seconds", "n_test_users", "model_dir",
            "params", "error", "skipped", "fit_cpu_seconds", "epochs_run", "best_epoch", "stage",
            "eval_protocol",
        )  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    @classmethod
    def failed(
        cls, config: ExperimentConfig, *, error: str | None = None, skipped: str | None = None
    ) -> RunResult:
        return cls(
            model=config.model.name, metrics={}, fit_seconds=0.0, eval_seconds=0.0, n_test_users=0,
            params=dict(config.model.params), error=error, skipped=skipped, config=config,
        )  # fmt: skip


@dataclass(frozen=True)
class PreparedData:
    """A loaded, filtered and split dataset, reusable by every run with the same ``data`` section
    and seed (``run_many``, tuning trials, ablation variants)."""

    dataset: Dataset
    split: Split
    data: DataConfig
    seed: int

    def matches(self, data: DataConfig, seed: int) -> bool:
        return seed == self.seed and _data_key(data) == _data_key(self.data)


def _data_key(data: DataConfig) -> str:
    # the augmentation applies to each run's training data, not to the shared split
    return json.dumps(data.model_dump(mode="json", exclude={"augment"}), sort_keys=True)


def prepare(data: DataConfig, seed: int, dataset: Dataset | None = None) -> PreparedData:
    """Load ``data.name`` (or take ``dataset``), protect PII (``data.pii``), apply the configured
    filters (logged), split."""
    from fusionrec.data import load_dataset

    ds = dataset if dataset is not None else load_dataset(data.name)
    if data.pii != "keep":
        from fusionrec.privacy.pii import pii_policy, protect_pii

        ds = protect_pii(ds, pii_policy(data.pii))
    if data.min_rating is not None or data.user_core or data.item_core:
        from fusionrec.data import filters

        if data.min_rating is not None:
            ds, rep = filters.filter_rating(ds, data.min_rating)
            log.info("%s", rep)
        if data.user_core or data.item_core:
            ds, rep = filters.filter_kcore(ds, data.user_core, data.item_core)
            log.info("%s", rep)
    return PreparedData(ds, split(ds, data.protocol, tuple(data.ratios), seed=seed), data, seed)


def prepare_data(
    data: DataConfig, seed: int, dataset: Dataset | None = None
) -> tuple[Dataset, Split]:
    """``(dataset, split)`` of ``prepare``."""
    p = prepare(data, seed, dataset)
    return p.dataset, p.split


def training_data(sp: Split, augment: AugmentConfig | None, seed: int) -> Dataset:
    """What a model is fitted on: ``sp.train``, or an augmented copy of it when ``augment`` is
    set (``data.augment``). Evaluation always masks the real ``sp.train``."""
    if augment is None:
        return sp.train
    from fusionrec.data.augmentation import augment_interactions

    train = augment_interactions(sp.train, augment, np.random.default_rng(seed))
    log.info(
        "augmented training data: %d -> %d interactions",
        sp.train.n_interactions,
        train.n_interactions,
    )
    return train


def experiment_record(data: DataConfig, seed: int, ev: EvalConfig) -> dict[str, Any]:
    """What ``evaluate --model-dir`` needs to rebuild the exact split."""
    return {"data": data.model_dump(mode="json"), "seed": seed, "eval": ev.model_dump(mode="json")}


DataArg = Dataset | Split | PreparedData | None


def _prepared(config: ExperimentConfig, dataset: DataArg) -> PreparedData:
    if isinstance(dataset, PreparedData):
        if not dataset.matches(config.data, config.seed):
            raise ConfigError(
                f"the prepared data was split with seed {dataset.seed} and data "
                f"{_data_key(dataset.data)}, the config asks for seed {config.seed} and data "
                f"{_data_key(config.data)}"
            )
        return dataset
    if isinstance(dataset, Split):
        return PreparedData(dataset.train, dataset, config.data, config.seed)
    return prepare(config.data, config.seed, dataset)


def _options(config: ExperimentConfig, options: RunOptions | None) -> RunOptions:
    return (options or RunOptions()).with_defaults(config.run_settings())


def run(
    config: ExperimentConfig, options: RunOptions | None = None, dataset: DataArg = None
) -> RunResult:
    """Fit ``config.model`` on the configured split's train part (``data.augment`` applied;
    the valid part for early stopping) and evaluate it on ``options.stage`` (full ranking, train
    items masked). With ``options.output_dir`` the model is saved under
    ``output_dir/models/<name>`` and the result written to ``output_dir/metrics.json``.

    ``dataset``: a Dataset used instead of loading ``config.data.name``, a ready ``Split``, or a
    ``PreparedData`` shared by several runs. Errors propagate (``run_many`` records them)."""
    opts = _options(config, options)
    return _execute(config, opts, _prepared(config, dataset))


def unmet_needs(config: ExperimentConfig, train: Dataset) -> str | None:
    """Why ``config.model`` cannot be fitted on ``train`` (a part the model needs is missing),
    or None. Builds the model from its params only (cheap: nothing is fitted)."""
    try:
        get_model(config.model.name)(**config.model_params()).check_dataset(train)
    except ConfigError as e:
        return str(e)
    return None


def run_many(
    configs: Sequence[ExperimentConfig],
    options: RunOptions | None = None,
    dataset: Dataset | PreparedData | None = None,
    *,
    skip_unmet: bool = False,
    on_start: Callable[[ExperimentConfig], None] | None = None,
    on_done: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """``run`` each config, one split per distinct data section and seed (loaded once).

    Every model's needs are checked against its split before anything is trained: with
    ``skip_unmet`` a model whose needs the dataset lacks gets a result with ``skipped`` set,
    otherwise a ``ConfigError`` names every such model. A model that fails while fitting or
    evaluating gets a result with ``error`` set and the others still run (KeyboardInterrupt is
    not caught). ``output_dir``: models under ``output_dir/models/<name>``; ``train_dir``: each
    model's Trainer folder is ``train_dir/<name>``. ``on_start``/``on_done`` see each run."""
    names = [c.model.name for c in configs]
    base = options or RunOptions()
    if base.output_dir is not None and len(set(names)) < len(names):
        raise ConfigError(f"run_many saves models by name; names repeat: {names}")
    cache: dict[tuple[str, int], PreparedData] = {}
    if isinstance(dataset, PreparedData):
        cache[(_data_key(dataset.data), dataset.seed)] = dataset
    prepared: list[PreparedData] = []
    for cfg in configs:
        key = (_data_key(cfg.data), cfg.seed)
        if key not in cache:
            cache[key] = prepare(
                cfg.data, cfg.seed, dataset if isinstance(dataset, Dataset) else None
            )
        prepared.append(cache[key])
    unmet = {
        i: unmet_needs(c, p.split.train)
        for i, (c, p) in enumerate(zip(configs, prepared, strict=True))
    }
    unmet = {i: why for i, why in unmet.items() if why}
    if unmet and not skip_unmet:
        raise ConfigError("nothing was trained: " + "; ".join(unmet.values()))
    results: list[RunResult] = []
    for i, (cfg, prep) in enumerate(zip(configs, prepared, strict=True)):
        if i in unmet:
            res = RunResult.failed(cfg, skipped=unmet[i])
        else:
            if on_start is not None:
                on_start(cfg)
            opts = base.replace(write_metrics=False)
            if opts.train_dir is not None:
                opts = opts.replace(train_dir=opts.train_dir / cfg.model.name)
            try:
                res = run(cfg, opts, prep)
            except Exception as e:  # one model failing must not lose the others' results
                log.debug("model %s failed", cfg.model.name, exc_info=True)
                res = RunResult.failed(cfg, error=f"{type(e).__name__}: {e}")
        if on_done is not None:
            on_done(res)
        results.append(res)
    return results


def _execute(config: ExperimentConfig, opts: RunOptions, prep: PreparedData) -> RunResult:
    name = config.model.name
    sp = prep.split
    model = make_model(name, config.model_params())
    train = training_data(sp, config.data.augment, config.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    fit_model(model, train, sp.valid, config.seed, opts)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    if opts.evaluate is not None:
        evaluation = opts.evaluate(model, sp)
    else:
        ev = config.eval
        reranker = None
        if ev.rerank is not None:  # eval.rerank: re-rank each user's top candidates first
            from fusionrec.rerank import make_reranker

            reranker = make_reranker(ev.rerank, sp.train, model)
        evaluator = Evaluator(
            metrics=ev.metrics,
            ks=ev.ks,
            batch_size=ev.batch_size,
            keep_topk=opts.keep_topk,
            reranker=reranker,
            protocol=ev.protocol,
            seed=config.seed,
        )
        evaluation = evaluator.evaluate_split(model, sp, opts.stage)
    eval_s = time.perf_counter() - t0
    hist = getattr(model, "history_", None)
    records = getattr(hist, "records", None) or None
    model_dir = None
    if opts.output_dir is not None:
        model_dir = opts.output_dir / "models" / name
        model.save(model_dir)
        atomic_write_text(
            model_dir / EXPERIMENT_FILE,
            json.dumps(experiment_record(config.data, config.seed, config.eval), indent=2),
        )
        if records:
            pd.DataFrame(records).to_csv(model_dir / "history.csv", index=False)
    result = RunResult(
        model=name,
        metrics=dict(evaluation.metrics),
        fit_seconds=fit_s,
        eval_seconds=eval_s,
        n_test_users=evaluation.n_users,
        model_dir=None if model_dir is None else str(model_dir),
        params=model.config.model_dump(mode="json"),
        fit_cpu_seconds=fit_cpu,
        epochs_run=len(records) if records else None,
        best_epoch=getattr(hist, "best_epoch", None) if records else None,
        stage=opts.stage,
        eval_protocol=getattr(evaluation, "protocol", "full"),
        recommender=model,
        evaluation=evaluation,
        config=config,
    )
    if opts.write_metrics and opts.output_dir is not None:
        atomic_write_text(opts.output_dir / "metrics.json", json.dumps(result.as_dict(), indent=2))
    return result


# ------------------------------------------------------------------ older entry points (wrappers)
def fit_and_evaluate(
    name: str,
    params: dict[str, Any],
    sp: Split,
    ev: EvalConfig,
    seed: int,
    model_dir: Path | None = None,
    experiment: dict[str, Any] | None = None,
    keep_topk: bool = False,
    train_dir: Path | None = None,
    resume: bool = False,
    augment: AugmentConfig | None = None,
) -> tuple[RunResult, Recommender, EvalResult]:
    """``run`` on a ready split, returning ``(result, model, evaluation)``. ``model_dir`` must be
    ``<folder>/models/<name>`` (the run layout); ``experiment`` is ignored (``run`` writes the
    record)."""
    del experiment
    output_dir = None
    if model_dir is not None:
        model_dir = Path(model_dir)
        if model_dir.name != name or model_dir.parent.name != "models":
            raise ConfigError(f"model_dir must be <run folder>/models/{name}, got {model_dir}")
        output_dir = model_dir.parent.parent
    cfg = ExperimentConfig(
        data=DataConfig(augment=augment),
        model=ModelSpec(name=name, params=params),
        eval=ev,
        seed=seed,
    )
    opts = RunOptions(
        output_dir=output_dir,
        keep_topk=keep_topk,
        train_dir=train_dir,
        resume=resume,
        write_metrics=False,
    )
    res = run(cfg, opts, sp)
    assert res.recommender is not None and res.evaluation is not None
    return res, res.recommender, res.evaluation


def run_experiment(
    cfg: ExperimentConfig,
    output_dir: str | Path,
    *,
    train_dir: str | Path | None = None,
    resume: bool = False,
) -> RunResult:
    """``run(cfg, RunOptions(output_dir=..., train_dir=..., resume=...))``."""
    return run(
        cfg,
        RunOptions(
            output_dir=Path(output_dir),
            train_dir=None if train_dir is None else Path(train_dir),
            resume=resume,
        ),
    )


def split_for_model_dir(
    model_dir: str | Path, data: DataConfig | None = None, seed: int | None = None
) -> tuple[Split, dict]:
    """Rebuild the split a saved model was evaluated on (from its experiment.json)."""
    p = Path(model_dir) / EXPERIMENT_FILE
    rec = json.loads(p.read_text()) if p.exists() else {}
    if data is None:
        if "data" not in rec:
            raise ConfigError(
                f"{model_dir} has no {EXPERIMENT_FILE}; pass --dataset (and --protocol, --seed)"
            )
        data = DataConfig.model_validate(rec["data"])
    seed = seed if seed is not None else rec.get("seed", 2020)
    return prepare(data, seed).split, rec
