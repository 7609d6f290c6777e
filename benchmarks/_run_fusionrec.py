"""Fit and evaluate ONE fusionrec model on MovieLens-100k; print one JSON result line.

Run by ``compare_recbole.py`` in its own process (so wall time and peak RSS belong to this
model alone)::

    python benchmarks/_run_fusionrec.py MODEL [--protocol rs|loo] [--kg-only] [--seed 2020]

Protocol (RecBole 1.2.1's default general protocol):

- ``rs``: ``split(ds, "rs", (0.8, 0.1, 0.1), seed)``; ``loo``: ``split(ds, "loo")`` (SASRec row).
- The model is ``get_model(MODEL)()`` with its registry defaults, fitted on train with valid
  for early stopping; test is full ranking over all items, masking train + valid items. The
  chain is ``fusionrec.experiment.run`` (the one the CLI uses).
- ``--kg-only`` mirrors RecBole's knowledge-graph models, which drop items without a KG link:
  interactions of unlinked items are removed before the split and unlinked items are never
  ranked.

The result holds wall ``fit_s`` and ``fit_cpu_s`` (this process's CPU seconds while fitting: with
one torch thread, close to the wall time the fit would take on a quiet machine), and for torch
models ``epochs_run``, ``best_epoch``, ``epoch_s_mean`` (training + validation, wall) and
``train_samples_per_s``.

The last stdout line is ``BENCH_RESULT {json}``. A model that is not registered yet gives
``"status": "not available"`` (exit 0); any other failure gives ``"status": "error"`` (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

MARKER = "BENCH_RESULT "
METRICS = ("ndcg@10", "recall@10", "mrr@10", "hit@10", "precision@10")


def _emit(result: dict) -> None:
    print(MARKER + json.dumps(result, sort_keys=True), flush=True)


def _load_ml100k():
    from fusionrec.data import load_dataset

    return load_dataset("ml-100k")


def _unlinked_mask(ds):
    """A (n_users, n_items) CSR with every item that has no KG link, for every user."""
    import numpy as np
    import scipy.sparse as sp

    cols = np.flatnonzero(ds.kg.item_entity < 0)
    rows = np.repeat(np.arange(ds.n_users), len(cols))
    data = np.ones(len(rows), np.float32)
    return sp.csr_matrix((data, (rows, np.tile(cols, ds.n_users))), shape=(ds.n_users, ds.n_items))


def run(model_name: str, protocol: str, kg_only: bool, seed: int) -> dict:
    """Load, split, fit, evaluate (through ``fusionrec.experiment.run``); return the record."""
    t_start = time.perf_counter()
    from fusionrec.errors import ConfigError
    from fusionrec.models import get_model

    try:
        get_model(model_name)
    except ConfigError as e:
        return {"model": model_name, "status": "not available", "reason": str(e)}

    import numpy as np

    from fusionrec.evaluation import Evaluator
    from fusionrec.experiment import RunOptions, prepare
    from fusionrec.experiment import run as run_experiment
    from fusionrec.experiment.config import DataConfig, EvalConfig, ExperimentConfig, ModelSpec

    ds = _load_ml100k()
    extra_mask = None
    if kg_only:
        if ds.kg is None:
            return {"model": model_name, "status": "error", "reason": "ml-100k loaded without a KG"}
        ds = ds.with_interactions(ds.kg.item_entity[ds.item_idx] >= 0, name=f"{ds.name}:kg-linked")
        extra_mask = _unlinked_mask(ds)
    cfg = ExperimentConfig(
        data=DataConfig(name=ds.name, protocol=protocol, ratios=(0.8, 0.1, 0.1)),
        model=ModelSpec(name=model_name),
        eval=EvalConfig(ks=[10]),
        seed=seed,
    )
    prepared = prepare(cfg.data, seed, ds)
    t_load = time.perf_counter() - t_start

    ev = Evaluator(ks=(10,))
    options = RunOptions()
    if extra_mask is not None:  # unlinked items are never ranked (RecBole's KG models drop them)
        options = RunOptions(
            evaluate=lambda model, sp_: ev.evaluate(model, sp_.test, exclude=(sp_.train, sp_.valid, extra_mask))
        )
    res = run_experiment(cfg, options, prepared)
    sp_, model = prepared.split, res.recommender

    out = {
        "model": model_name,
        "status": "ok",
        "protocol": protocol,
        "kg_only": kg_only,
        "seed": seed,
        "params": res.params,
        "n_users": int(ds.n_users),
        "n_items": int(ds.n_items) if extra_mask is None else int((ds.kg.item_entity >= 0).sum()),
        "n_train": int(sp_.train.n_interactions),
        "n_valid": int(sp_.valid.n_interactions),
        "n_test": int(sp_.test.n_interactions),
        "eval_users": int(res.n_test_users),
        "load_s": round(t_load, 3),
        "fit_s": round(res.fit_seconds, 3),
        "fit_cpu_s": round(res.fit_cpu_seconds or 0.0, 3),
        "eval_s": round(res.eval_seconds, 3),
        "total_s": round(time.perf_counter() - t_start, 3),
    }
    out.update({m: round(float(res.metrics[m]), 6) for m in METRICS})
    history = getattr(model, "history_", None)
    records = getattr(history, "records", None)
    if records:
        out["epochs_run"] = len(records)
        out["best_epoch"] = history.best_epoch
        out["epoch_s_mean"] = round(float(np.mean([r["seconds"] for r in records])), 3)
        out["train_samples_per_s"] = round(float(np.mean([r["samples_per_s"] for r in records])), 1)
    out["finite_scores"] = bool(
        np.isfinite(model.score_indices(np.arange(min(4, ds.n_users)))).any()
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="fusionrec registry name, e.g. ease")
    p.add_argument("--protocol", choices=("rs", "loo"), default="rs")
    p.add_argument(
        "--kg-only",
        action="store_true",
        help="keep only items with a KG link (as RecBole's KG models)",
    )
    p.add_argument("--seed", type=int, default=2020)
    a = p.parse_args(argv)
    try:
        result = run(a.model, a.protocol, a.kg_only, a.seed)
    except Exception as e:  # report, do not crash the whole benchmark
        traceback.print_exc()
        _emit({"model": a.model, "status": "error", "reason": f"{type(e).__name__}: {e}"})
        return 1
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
