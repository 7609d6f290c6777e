"""Run experiments: load + split a dataset, fit models, evaluate, save, export.

The CLI's ``quickstart``, ``train``, ``evaluate`` and ``tune`` are thin layers over this module.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.data.augmentation import AugmentConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.splits import Split, split
from fusionrec.evaluation.evaluator import EvalResult, Evaluator
from fusionrec.experiment.config import DataConfig, EvalConfig, ExperimentConfig
from fusionrec.models.base import Recommender, load_model
from fusionrec.models.registry import get_model

__all__ = [
    "RunResult",
    "prepare_data",
    "fit_and_evaluate",
    "run_experiment",
    "experiment_record",
    "training_data",
    "export_split",
    "export_recommendations",
    "split_for_model_dir",
    "EXPERIMENT_FILE",
]

log = logging.getLogger(__name__)
EXPERIMENT_FILE = "experiment.json"


@dataclass
class RunResult:
    model: str
    metrics: dict[str, float]
    fit_seconds: float
    eval_seconds: float
    n_test_users: int
    model_dir: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prepare_data(data: DataConfig, seed: int, dataset: Dataset | None = None) -> tuple[Dataset, Split]:
    """Load (or take) the dataset, apply the configured filters (reported), and split it."""
    from fusionrec.data import load_dataset

    ds = dataset if dataset is not None else load_dataset(data.name)
    if data.min_rating is not None or data.user_core or data.item_core:
        from fusionrec.data import filters

        if data.min_rating is not None:
            ds, rep = filters.filter_rating(ds, data.min_rating)
            log.info("%s", rep)
        if data.user_core or data.item_core:
            ds, rep = filters.filter_kcore(ds, data.user_core, data.item_core)
            log.info("%s", rep)
    return ds, split(ds, data.protocol, tuple(data.ratios), seed=seed)


def _evaluator(ev: EvalConfig, keep_topk: bool = False) -> Evaluator:
    return Evaluator(metrics=ev.metrics, ks=ev.ks, batch_size=ev.batch_size, keep_topk=keep_topk)


def training_data(sp: Split, augment: AugmentConfig | None, seed: int) -> Any:
    """What a model is fitted on: ``sp.train``, or an augmented copy of it when ``augment`` is
    set (``data.augment``). Evaluation always masks the real ``sp.train``."""
    if augment is None:
        return sp.train
    from fusionrec.data.augmentation import augment_interactions

    train = augment_interactions(sp.train, augment, np.random.default_rng(seed))
    log.info(
        "augmented training data: %d -> %d interactions", sp.train.n_interactions, train.n_interactions
    )
    return train


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
    """Fit ``name`` on ``sp.train`` (``sp.valid`` for early stopping), evaluate on ``sp.test``.

    ``train_dir``/``resume`` go to a torch model's Trainer (per-epoch checkpoints, log.csv and
    curve.png in ``train_dir``; ``resume`` continues from its last checkpoint); other models
    ignore ``train_dir`` and refuse ``resume``."""
    model = get_model(name)(**params)
    fit_options: dict[str, Any] = {}
    from fusionrec.models.torch_base import TorchRecommender

    if isinstance(model, TorchRecommender) and train_dir is not None:
        fit_options = {"run_dir": train_dir, "resume": resume}
    if resume and not fit_options:
        from fusionrec.errors import ConfigError

        why = (
            "needs a training folder"
            if isinstance(model, TorchRecommender)
            else "is not trained by epochs"
        )
        raise ConfigError(f"cannot resume model {name!r}: it {why}")
    t0 = time.perf_counter()
    train = training_data(sp, augment, seed)
    model.fit(train, sp.valid, seed=seed, **fit_options)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = _evaluator(ev, keep_topk).evaluate_split(model, sp, "test")
    eval_s = time.perf_counter() - t0
    out_dir = None
    if model_dir is not None:
        model.save(model_dir)
        if experiment is not None:
            (Path(model_dir) / EXPERIMENT_FILE).write_text(json.dumps(experiment, indent=2))
        out_dir = str(model_dir)
    result = RunResult(
        model=name,
        metrics=res.metrics,
        fit_seconds=fit_s,
        eval_seconds=eval_s,
        n_test_users=res.n_users,
        model_dir=out_dir,
        params=model.config.model_dump(mode="json"),
    )
    return result, model, res


def experiment_record(data: DataConfig, seed: int, ev: EvalConfig) -> dict[str, Any]:
    """What ``evaluate --model-dir`` needs to rebuild the exact split."""
    return {"data": data.model_dump(mode="json"), "seed": seed, "eval": ev.model_dump(mode="json")}


def run_experiment(
    cfg: ExperimentConfig,
    output_dir: str | Path,
    *,
    train_dir: str | Path | None = None,
    resume: bool = False,
) -> RunResult:
    """Fit and evaluate ``cfg.model`` and save it under ``output_dir/models/<name>``
    (``train_dir``/``resume``: see ``fit_and_evaluate``)."""
    out = Path(output_dir)
    _, sp = prepare_data(cfg.data, cfg.seed)
    res, model, _ = fit_and_evaluate(
        cfg.model.name,
        cfg.model_params(),
        sp,
        cfg.eval,
        cfg.seed,
        model_dir=out / "models" / cfg.model.name,
        experiment=experiment_record(cfg.data, cfg.seed, cfg.eval),
        train_dir=None if train_dir is None else Path(train_dir),
        resume=resume,
        augment=cfg.data.augment,
    )
    hist = getattr(model, "history_", None)
    if hist is not None and getattr(hist, "records", None):
        pd.DataFrame(hist.records).to_csv(out / "models" / cfg.model.name / "history.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(res.as_dict(), indent=2))
    return res


def split_for_model_dir(model_dir: str | Path, data: DataConfig | None = None, seed: int | None = None) -> tuple[Split, dict]:
    """Rebuild the split a saved model was evaluated on (from its experiment.json)."""
    p = Path(model_dir) / EXPERIMENT_FILE
    rec = json.loads(p.read_text()) if p.exists() else {}
    if data is None:
        if "data" not in rec:
            from fusionrec.errors import ConfigError

            raise ConfigError(f"{model_dir} has no {EXPERIMENT_FILE}; pass --dataset (and --protocol, --seed)")
        data = DataConfig.model_validate(rec["data"])
    seed = seed if seed is not None else rec.get("seed", 2020)
    _, sp = prepare_data(data, seed)
    return sp, rec


def export_split(sp: Split, out_dir: str | Path) -> None:
    """Write ``train.csv``, ``valid.csv``, ``test.csv`` with raw ids (+ rating/timestamp)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", sp.train), ("valid", sp.valid), ("test", sp.test)):
        df = part.interactions_frame()
        if "timestamp" in df.columns and np.all(np.mod(df["timestamp"].to_numpy(), 1) == 0):
            df["timestamp"] = df["timestamp"].astype(np.int64)
        _atomic_csv(df, d / f"{name}.csv")


def export_recommendations(model: Recommender, res: EvalResult, path: str | Path) -> None:
    """Every evaluated test user's ranked list: ``user_id,item_id,rank,score`` (rank 1 best)."""
    if res.topk_items is None or res.topk_scores is None:
        raise ValueError("evaluation was run without keep_topk=True")
    k = res.topk_items.shape[1]
    users = np.repeat(res.users, k)
    items = res.topk_items.ravel()
    scores = res.topk_scores.ravel()
    ok = np.isfinite(scores)
    df = pd.DataFrame(
        {
            "user_id": model.users_.to_ids(users[ok]),
            "item_id": model.items_.to_ids(items[ok]),
            "rank": np.tile(np.arange(1, k + 1), len(res.users))[ok],
            "score": scores[ok],
        }
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _atomic_csv(df, Path(path))


def _atomic_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)


def load_for_cli(model_dir: str | Path) -> Recommender:
    return load_model(model_dir)
