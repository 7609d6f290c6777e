"""Ablation of the ``joint`` model's sources on MovieLens-100k, side by side with EASE.

    python benchmarks/joint_ablation.py [--seeds 2020,1,2] [--variants id,user,text,kg,joint]
        [--epochs N] [--patience N] [--finetune frozen|lora|top_n|full] [--params JSON]
        [--drop-terms] [--no-ease] [--output DIR]

Protocol: RS 8:1:1 (per user, random order) for each split seed, full ranking, NDCG@10 and
Recall@10 on test with train and valid items masked; early stopping on validation NDCG@10.
Variants are one ``joint`` model with ``sources`` = [] (id: BPR-MF), [user], [text], [kg]
(each single-source ablation) and [user, text, kg] (joint); ``--drop-terms`` adds the joint
model with each auxiliary loss term switched off (source kept in the score). Item text is
encoded once by the packaged all-MiniLM-L6-v2 (cached on disk); ``--finetune lora`` trains the
language model's LoRA adapters too (slow on CPU). Prints one markdown table and writes
``joint_ablation.json`` to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, list[str]] = {
    "id": [],
    "user": ["user"],
    "text": ["text"],
    "kg": ["kg"],
    "joint": ["user", "text", "kg"],
}


def _row(ds: Any, sp: Any, name: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    from fusionrec.evaluation.evaluator import Evaluator
    from fusionrec.models import get_model

    t0 = time.perf_counter()
    model = get_model(name)(**params).fit(sp.train, sp.valid, seed=seed)
    fit_s = time.perf_counter() - t0
    ev = Evaluator(metrics=("ndcg", "recall"), ks=(10,))
    r = ev.evaluate(model, sp.test, exclude=(sp.train, sp.valid))
    hist = getattr(model, "history_", None)
    last = {}
    if hist is not None and getattr(hist, "records", None):
        last = {k: v for k, v in hist.records[-1].items() if k.startswith("loss_")}
    return {
        "ndcg@10": float(r["ndcg@10"]),
        "recall@10": float(r["recall@10"]),
        "fit_s": fit_s,
        "epochs": len(getattr(hist, "records", []) or []),
        "last_losses": last,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="2020,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--finetune", default="frozen")
    p.add_argument("--drop-terms", action="store_true")
    p.add_argument("--params", default="{}", help='extra joint parameters as JSON, e.g. {"lr": 0.002}')
    p.add_argument("--no-ease", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", default="runs/joint_ablation")
    a = p.parse_args(argv)

    import torch

    from fusionrec.data import load_dataset
    from fusionrec.data.splits import split
    from fusionrec.encoders import encode_items

    torch.set_num_threads(a.threads)
    ds = load_dataset("ml-100k")
    ds = ds.with_item_embedding("text", encode_items(ds))
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    runs: dict[str, tuple[str, dict[str, Any]]] = {}
    base = {"epochs": a.epochs, "patience": a.patience, **json.loads(a.params)}
    if a.finetune != "frozen":
        base |= {"encoder_finetune": a.finetune, "lora_r": 4, "live_items": 32}
    for v in a.variants.split(","):
        runs[v] = ("joint", {**base, "sources": VARIANTS[v]})
    if a.drop_terms:
        for term in ("user", "text", "kg"):
            runs[f"joint-L_{term}"] = (
                "joint",
                {**base, "sources": VARIANTS["joint"], "loss_weights": {term: 0.0}},
            )
    if not a.no_ease:
        runs["ease"] = ("ease", {})
    out: dict[str, dict[str, Any]] = {v: {} for v in runs}
    for sd in seeds:
        sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=sd)
        for v, (name, params) in runs.items():
            r = _row(ds, sp, name, params, sd)
            out[v][str(sd)] = r
            print(f"seed {sd} {v}: ndcg@10 {r['ndcg@10']:.4f} ({r['fit_s']:.0f}s, {r['epochs']} ep)", flush=True)
    lines = ["| variant | " + " | ".join(f"NDCG@10 s{s}" for s in seeds) + " | mean | Recall@10 mean |"]
    lines.append("|---" * (len(seeds) + 3) + "|")
    for v, per in out.items():
        nd = [per[str(s)]["ndcg@10"] for s in seeds]
        rc = [per[str(s)]["recall@10"] for s in seeds]
        lines.append(
            f"| {v} | " + " | ".join(f"{x:.4f}" for x in nd) + f" | {sum(nd) / len(nd):.4f} | {sum(rc) / len(rc):.4f} |"
        )
    print("\n".join(lines))
    dest = Path(a.output)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "joint_ablation.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
