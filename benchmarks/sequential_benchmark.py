"""Sequential families on ml-100k leave-one-out: SASRec vs GRU4Rec vs Caser, and contrastive
pretraining then fine-tuning vs training from scratch.

Same split (loo, seed), same Trainer, same epoch budget (``--epochs``, early stopping on valid
NDCG@10 with ``--patience``), full ranking over all items, train+valid masked. Prints NDCG@10,
Recall@10, fit seconds and epochs run; ``--json`` writes the records.

    python benchmarks/sequential_benchmark.py --epochs 30
    python benchmarks/sequential_benchmark.py --only pretrain --pretrain-epochs 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _evaluate(model, sp_) -> dict:
    from fusionrec.evaluation.evaluator import Evaluator

    ev = Evaluator(metrics=("ndcg", "recall"), ks=(10,))
    res = ev.evaluate(model, sp_.test, exclude=(sp_.train, sp_.valid))
    return {"ndcg@10": round(float(res["ndcg@10"]), 4), "recall@10": round(float(res["recall@10"]), 4)}


def _record(label: str, model, sp_, seconds: float) -> dict:
    hist = getattr(model, "history_", None)
    rec = {"run": label, "fit_s": round(seconds, 1), **_evaluate(model, sp_)}
    if hist is not None:
        rec["epochs"] = len(hist.records)
    print(
        f"{label:<36} NDCG@10 {rec['ndcg@10']:.4f}  Recall@10 {rec['recall@10']:.4f}  "
        f"fit {rec['fit_s']:7.1f} s  epochs {rec.get('epochs', '-')}",
        flush=True,
    )
    return rec


def main(argv: list[str] | None = None) -> int:
    from fusionrec.data import load_dataset, split
    from fusionrec.models import get_model
    from fusionrec.models.sequential.pretrain import pretrain_then_finetune
    from fusionrec.training import FitOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ml-100k")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--pretrain-models", default="gru4rec,caser")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", choices=["families", "pretrain", "all"], default="all")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)

    sp_ = split(load_dataset(a.data), "loo", seed=a.seed)
    opts = FitOptions(device=a.device)
    budget = {"epochs": a.epochs, "patience": a.patience, "lr": a.lr}
    print(f"{a.data} loo seed {a.seed}; {sp_.train.n_users} users, {sp_.train.n_items} items; "
          f"budget {a.epochs} epochs, patience {a.patience}, lr {a.lr}; device {a.device}", flush=True)  # fmt: skip
    records = []
    if a.only in ("families", "all"):
        for name in ("sasrec", "gru4rec", "caser"):
            model = get_model(name)(**budget)
            t0 = time.perf_counter()
            model.fit(sp_.train, sp_.valid, seed=a.seed, options=opts)
            records.append(_record(name, model, sp_, time.perf_counter() - t0))
    if a.only in ("pretrain", "all"):
        for name in a.pretrain_models.split(","):
            if a.only == "pretrain":
                model = get_model(name)(**budget)
                t0 = time.perf_counter()
                model.fit(sp_.train, sp_.valid, seed=a.seed, options=opts)
                records.append(_record(f"{name} from scratch", model, sp_, time.perf_counter() - t0))
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                fine, _ = pretrain_then_finetune(
                    name, sp_.train, sp_.valid, Path(tmp) / "pre", params=budget,
                    pretrain={"epochs": a.pretrain_epochs}, seed=a.seed, options=opts,
                )  # fmt: skip
                label = f"{name} pretrained {a.pretrain_epochs} + fine-tuned"
                records.append(_record(label, fine, sp_, time.perf_counter() - t0))
    if a.json:
        a.json.write_text(json.dumps({"args": vars(a) | {"json": str(a.json)}, "runs": records}, indent=2))
    return 0 if all(np.isfinite(r["ndcg@10"]) for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
