"""Fit and evaluate ONE RecBole 1.2.1 model on its bundled MovieLens-100k; print one JSON line.

Executed by ``compare_recbole.py`` with the RecBole virtualenv's python (RecBole needs
numpy<2, pandas<3, scipy<1.13; fusionrec's own environment does not have them)::

    .bench/recbole-venv/bin/python benchmarks/_run_recbole.py MODEL [--protocol rs|loo] \\
        [--workdir .bench/recbole_work]

It follows ``recbole.quick_start.run_recbole`` step by step (config, seed, dataset,
data_preparation, seed again, model, trainer.fit, trainer.evaluate) so that fit and test
evaluation can be timed apart. The configuration is RecBole's default general protocol:
RS 8:1:1, order RO, group_by user, full ranking, metrics Recall/MRR/NDCG/Hit/Precision @10,
valid_metric MRR@10, seed 2020, reproducibility on, CPU; ``loo`` is leave-one-out by time
(``split LS valid_and_test, order TO``), used for SASRec. The dataset is read from
``<site-packages>/recbole/dataset_example`` so nothing is downloaded.

The last stdout line is ``BENCH_RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback

MARKER = "BENCH_RESULT "
METRICS = ("ndcg@10", "recall@10", "mrr@10", "hit@10", "precision@10")


def _emit(result: dict) -> None:
    print(MARKER + json.dumps(result, sort_keys=True), flush=True)


def config_dict(model: str, protocol: str, workdir: str, epochs: int | None = None) -> dict:
    """The RecBole settings of the comparison protocol (explicit, so a default change shows)."""
    import recbole

    data_path = os.path.join(os.path.dirname(recbole.__file__), "dataset_example")
    order, split = (
        ("RO", {"RS": [0.8, 0.1, 0.1]}) if protocol == "rs" else ("TO", {"LS": "valid_and_test"})
    )
    cfg = {
        "data_path": data_path,
        "checkpoint_dir": os.path.join(workdir, "saved"),
        "eval_args": {"split": split, "order": order, "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision"],
        "topk": [10],
        "valid_metric": "MRR@10",
        "seed": 2020,
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
    }
    if epochs is not None:  # a cap for slow models (RecBole's default is 300 with early stopping)
        cfg["epochs"] = int(epochs)
    if model == "SASRec":  # its default CE loss scores all items: no negative sampling
        cfg["train_neg_sample_args"] = None
    return cfg


def _dgl_compat() -> None:
    """Let RecBole 1.2.1's KGAT run on dgl 1.1.3 (the newest dgl wheel for Python 3.11 that
    imports beside torch 2.13; dgl 2.x needs a graphbolt library built for each torch version).

    KGAT builds its attention matrix with two dgl 0.x calls that dgl 1.x renamed:
    ``dgl.edge_subgraph(g, e, preserve_nodes=True)`` is ``relabel_nodes=False`` now, and
    ``g.adjacency_matrix(transpose=False, scipy_fmt="coo")`` is ``g.adj_external(...)``
    (same orientation: rows are source nodes). Only those two names are mapped; the model's
    arithmetic is RecBole's own.
    """
    import dgl

    if getattr(dgl, "_fusionrec_compat", False):
        return
    edge_subgraph = dgl.edge_subgraph

    def _edge_subgraph(graph, edges, *args, preserve_nodes=None, **kwargs):
        if preserve_nodes is not None:
            kwargs.setdefault("relabel_nodes", not preserve_nodes)
        return edge_subgraph(graph, edges, *args, **kwargs)

    adjacency_matrix = dgl.DGLGraph.adjacency_matrix

    def _adjacency_matrix(self, *args, **kwargs):
        if "scipy_fmt" in kwargs or "transpose" in kwargs:
            return self.adj_external(*args, **kwargs)
        return adjacency_matrix(self, *args, **kwargs)

    dgl.edge_subgraph = _edge_subgraph
    dgl.DGLGraph.adjacency_matrix = _adjacency_matrix
    dgl._fusionrec_compat = True


class _TimeUp(Exception):
    """Raised at the start of an epoch once ``--time-limit`` seconds of fitting have passed."""


def _build(model_name: str, protocol: str, workdir: str, epochs: int | None):
    """(config, dataset, train/valid/test loaders, trainer), as RecBole's quick_start makes them."""
    if model_name == "KGAT":
        _dgl_compat()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    config = Config(
        model=model_name,
        dataset="ml-100k",
        config_dict=config_dict(model_name, protocol, workdir, epochs),
    )
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return config, dataset, (train_data, valid_data, test_data), trainer


def _record(model_name, protocol, config, dataset, train_data) -> dict:
    import recbole

    return {
        "model": model_name,
        "status": "ok",
        "protocol": protocol,
        "recbole_version": recbole.__version__,
        "n_users": int(dataset.user_num - 1),  # RecBole counts a padding id 0
        "n_items": int(dataset.item_num - 1),
        "n_interactions": int(dataset.inter_num),
        "n_train": int(len(getattr(train_data, "dataset", None) or train_data._dataset)),
        "config": {
            k: config[k]
            for k in ("epochs", "train_batch_size", "learning_rate", "stopping_step", "eval_step")
        },
    }


def run(
    model_name: str,
    protocol: str,
    workdir: str,
    epochs: int | None = None,
    time_limit: float | None = None,
) -> dict:
    """RecBole's quick_start, unrolled and timed. ``time_limit``: no new epoch starts after that
    many seconds of fitting; the best-validation checkpoint so far is evaluated on test."""
    t_start = time.perf_counter()
    config, dataset, (train_data, valid_data, test_data), trainer = _build(
        model_name, protocol, workdir, epochs
    )
    t_load = time.perf_counter() - t_start

    # record the validation curve (score and wall second of each validation pass), so a capped
    # run shows whether it was still improving when it stopped
    curve: list[list[float]] = []
    valid_epoch, train_epoch = trainer._valid_epoch, trainer._train_epoch

    def _recorded_valid_epoch(*args, **kwargs):
        score, result = valid_epoch(*args, **kwargs)
        curve.append([round(float(score), 6), round(time.perf_counter() - t0, 1)])
        return score, result

    def _timed_train_epoch(*args, **kwargs):
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            raise _TimeUp
        return train_epoch(*args, **kwargs)

    trainer._valid_epoch, trainer._train_epoch = _recorded_valid_epoch, _timed_train_epoch

    t0, c0 = time.perf_counter(), time.process_time()
    stopped = False
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    except _TimeUp:
        stopped = True
    fit_s = time.perf_counter() - t0
    fit_cpu_s = time.process_time() - c0  # all threads of this process

    t0 = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    eval_s = time.perf_counter() - t0
    saved_file = getattr(trainer, "saved_model_file", None)
    if saved_file and os.path.exists(saved_file):  # checkpoints are scratch; do not pile them up
        os.remove(saved_file)

    out = _record(model_name, protocol, config, dataset, train_data)
    out.update(
        {
            "best_valid_score": round(float(trainer.best_valid_score), 6),
            "epochs_run": len(curve) or len(getattr(trainer, "train_loss_dict", {}) or {}),
            "stopped_by_time_limit": stopped,
            "valid_curve": curve,
            "valid_metric": str(config["valid_metric"]),
            "load_s": round(t_load, 3),
            "fit_s": round(fit_s, 3),
            "fit_cpu_s": round(fit_cpu_s, 3),
            "eval_s": round(eval_s, 3),
            "total_s": round(time.perf_counter() - t_start, 3),
        }
    )
    out.update({m: round(float(test_result[m]), 6) for m in METRICS})
    return out


_EPOCH_LINE = re.compile(
    r"epoch (\d+) (training|evaluating) \[time: ([\d.]+)s.*?(?:valid_score: ([\d.]+))?\]"
)


def from_checkpoint(
    model_name: str,
    protocol: str,
    workdir: str,
    epochs: int | None,
    checkpoint: str,
    log_file: str,
    fit_cpu_s: float | None = None,
) -> dict:
    """Test metrics of a run that was stopped from outside (e.g. killed at a time cap): rebuild
    the same data and model, load its best-validation checkpoint, evaluate on test. Fit seconds
    and the validation curve are read from the run's RecBole log (sum of its per-epoch training
    and validation times, i.e. the completed epochs only)."""
    import torch

    config, dataset, (train_data, _, test_data), trainer = _build(
        model_name, protocol, workdir, epochs
    )
    t0 = time.perf_counter()
    test_result = trainer.evaluate(
        test_data, load_best_model=True, model_file=checkpoint, show_progress=False
    )
    eval_s = time.perf_counter() - t0
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    fit_s, curve, elapsed = 0.0, [], 0.0
    with open(log_file, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _EPOCH_LINE.search(line)
            if not m:
                continue
            fit_s += float(m.group(3))
            elapsed += float(m.group(3))
            if m.group(2) == "evaluating" and m.group(4) is not None:
                curve.append([float(m.group(4)), round(elapsed, 1)])
    out = _record(model_name, protocol, config, dataset, train_data)
    out.update(
        {
            "best_valid_score": round(float(ckpt["best_valid_score"]), 6),
            "best_epoch": int(ckpt["epoch"]) + 1,
            "epochs_run": len(curve),
            "stopped_by_time_limit": True,
            "stopped_how": "killed after its last completed epoch; best checkpoint evaluated",
            "valid_curve": curve,
            "valid_metric": str(config["valid_metric"]),
            "fit_s": round(fit_s, 3),
            "fit_cpu_s": fit_cpu_s,
            "eval_s": round(eval_s, 3),
        }
    )
    out.update({m: round(float(test_result[m]), 6) for m in METRICS})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="RecBole model class name, e.g. EASE")
    p.add_argument("--protocol", choices=("rs", "loo"), default="rs")
    p.add_argument("--workdir", default=".bench/recbole_work", help="checkpoints and logs go here")
    p.add_argument(
        "--epochs", type=int, default=None, help="cap RecBole's epochs (default: its own)"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds of fitting after which no new epoch starts (best checkpoint is evaluated)",
    )
    p.add_argument(
        "--from-checkpoint",
        default=None,
        help="evaluate this checkpoint of a stopped run (needs --from-log, its RecBole log)",
    )
    p.add_argument("--from-log", default=None, help="RecBole log of the stopped run")
    p.add_argument("--fit-cpu-s", type=float, default=None, help="CPU seconds the run had used")
    a = p.parse_args(argv)
    if a.from_checkpoint and not a.from_log:
        p.error("--from-checkpoint needs --from-log")
    workdir = os.path.abspath(a.workdir)
    ckpt = os.path.abspath(a.from_checkpoint) if a.from_checkpoint else None
    run_log = os.path.abspath(a.from_log) if a.from_log else None
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)  # RecBole writes ./log and ./log_tensorboard relative to the cwd
    try:
        if ckpt:
            result = from_checkpoint(
                a.model, a.protocol, workdir, a.epochs, ckpt, run_log, a.fit_cpu_s
            )
        else:
            result = run(a.model, a.protocol, workdir, a.epochs, a.time_limit)
    except Exception as e:  # report, do not crash the whole benchmark
        traceback.print_exc()
        _emit({"model": a.model, "status": "error", "reason": f"{type(e).__name__}: {e}"})
        return 1
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
