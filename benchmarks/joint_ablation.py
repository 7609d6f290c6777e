"""Ablation of the ``joint`` model's sources and loss terms on MovieLens-100k, with EASE.

    python benchmarks/joint_ablation.py [--seeds 2020,1,2] [--variants id,user,text,kg,joint]
        [--leave-one-out] [--drop-terms] [--grid JSON] [--epochs N] [--patience N]
        [--finetune frozen|lora|top_n|full] [--params JSON] [--no-ease] [--output DIR]

Protocol: RS 8:1:1 (per user, random order) for each split seed, full ranking, NDCG@10 on valid
(train items masked) and on test (train and valid items masked); early stopping on validation
NDCG@10. Variants are one ``joint`` model with ``sources`` = [] (id: BPR-MF), [user], [text],
[kg] (each single source with the IDs) and [user, text, kg] (joint); ``--leave-one-out`` adds
the joint model without each source (``-user``, ``-text``, ``-kg``); ``--drop-terms`` adds it
with each auxiliary loss term switched off, the source kept in the score (``joint-L_user`` ...).
Every variant gets the same parameters (``--params``) for the parts it has.

``--grid`` (a JSON list of parameter dicts) chooses those parameters on validation: each
candidate is fitted as the full joint model on the first seed's split, the one with the best
*valid* NDCG@10 is kept and used for every variant and seed (test is never looked at).

Item text is encoded once by the packaged all-MiniLM-L6-v2 (cached on disk); ``--finetune lora``
trains the language model's LoRA adapters too (slow on CPU). Prints one markdown table (valid /
test NDCG@10 per seed) and writes ``joint_ablation.json`` to ``--output``.
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
LEAVE_ONE_OUT: dict[str, list[str]] = {
    "-user": ["text", "kg"],
    "-text": ["user", "kg"],
    "-kg": ["user", "text"],
}


def _row(sp: Any, name: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    from fusionrec.evaluation.evaluator import Evaluator
    from fusionrec.models import get_model

    t0 = time.perf_counter()
    model = get_model(name)(**params).fit(sp.train, sp.valid, seed=seed)
    fit_s = time.perf_counter() - t0
    ev = Evaluator(metrics=("ndcg", "recall"), ks=(10,))
    va = ev.evaluate(model, sp.valid, exclude=(sp.train,))
    te = ev.evaluate(model, sp.test, exclude=(sp.train, sp.valid))
    hist = getattr(model, "history_", None)
    records = list(getattr(hist, "records", []) or [])
    losses = {k: v for k, v in records[-1].items() if k.startswith("loss_")} if records else {}
    return {
        "valid_ndcg@10": float(va["ndcg@10"]),
        "ndcg@10": float(te["ndcg@10"]),
        "recall@10": float(te["recall@10"]),
        "fit_s": fit_s,
        "epochs": len(records),
        "best_epoch": getattr(hist, "best_epoch", None),
        "last_losses": losses,
    }


def _print(tag: str, sd: int, r: dict[str, Any]) -> None:
    print(
        f"seed {sd} {tag}: valid {r['valid_ndcg@10']:.4f} test {r['ndcg@10']:.4f} "
        f"({r['fit_s']:.0f}s, {r['epochs']} ep) {json.dumps({k: round(v, 4) for k, v in r['last_losses'].items()})}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="2020,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--leave-one-out", action="store_true")
    p.add_argument("--drop-terms", action="store_true")
    p.add_argument("--grid", default=None, help="JSON list of joint parameter dicts chosen on valid")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--finetune", default="frozen")
    p.add_argument("--params", default="{}", help='joint parameters as JSON, e.g. {"side_lr": 0.001}')
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
    base: dict[str, Any] = {"epochs": a.epochs, "patience": a.patience, **json.loads(a.params)}
    if a.finetune != "frozen":
        base |= {"encoder_finetune": a.finetune, "lora_r": 4, "live_items": 32}
    dest = Path(a.output)
    dest.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"base_params": dict(base)}

    if a.grid:
        sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=seeds[0])
        cands = json.loads(a.grid)
        scored = []
        for cand in cands:
            r = _row(sp, "joint", {**base, **cand, "sources": VARIANTS["joint"]}, seeds[0])
            _print(f"grid {json.dumps(cand)}", seeds[0], r)
            scored.append((r["valid_ndcg@10"], cand, r))
        best = max(scored, key=lambda t: t[0])[1]
        print(f"chosen on seed {seeds[0]} valid NDCG@10: {json.dumps(best)}", flush=True)
        report["grid"] = [{"params": c, "valid_ndcg@10": v, "ndcg@10": r["ndcg@10"]} for v, c, r in scored]
        report["chosen"] = best
        base = {**base, **best}

    weights = dict(base.get("loss_weights", {}))
    runs: dict[str, tuple[str, dict[str, Any]]] = {}
    for v in a.variants.split(","):
        runs[v] = ("joint", {**base, "sources": VARIANTS[v]})
    if a.leave_one_out:
        for v, s in LEAVE_ONE_OUT.items():
            runs[v] = ("joint", {**base, "sources": s})
    if a.drop_terms:
        for term in ("user", "text", "kg"):
            runs[f"joint-L_{term}"] = (
                "joint",
                {**base, "sources": VARIANTS["joint"], "loss_weights": {**weights, term: 0.0}},
            )
    if not a.no_ease:
        runs["ease"] = ("ease", {})
    out: dict[str, dict[str, Any]] = {v: {} for v in runs}
    for sd in seeds:
        sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=sd)
        for v, (name, params) in runs.items():
            r = _row(sp, name, params, sd)
            out[v][str(sd)] = r
            _print(v, sd, r)
            report["rows"] = out
            (dest / "joint_ablation.json").write_text(json.dumps(report, indent=1))
    head = " | ".join(f"valid s{s} | test s{s}" for s in seeds)
    lines = [f"| variant | {head} | test mean |", "|---" + "|---:" * (2 * len(seeds) + 1) + "|"]
    for v, per in out.items():
        cells = " | ".join(f"{per[str(s)]['valid_ndcg@10']:.4f} | {per[str(s)]['ndcg@10']:.4f}" for s in seeds)
        mean = sum(per[str(s)]["ndcg@10"] for s in seeds) / len(seeds)
        lines.append(f"| {v} | {cells} | {mean:.4f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
