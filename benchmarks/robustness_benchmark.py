"""Shilling attacks on ml-100k: overall NDCG@10 and target hit rate, with and without defences.

Rows: clean BPR; for each attack kind (random, average, bandwagon): no defence, the
fake-profile detector (flagged users removed, then refit; its precision/recall), APR
(BPR with adv_eps). Targets: 5 items drawn among the 20-50% popularity quantiles.

    python benchmarks/robustness_benchmark.py --epochs 40 --profiles 100 --filler 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--profiles", type=int, default=100)
    ap.add_argument("--filler", type=int, default=20)
    ap.add_argument("--targets", type=int, default=5)
    ap.add_argument("--adv-eps", type=float, default=0.5)
    ap.add_argument("--kinds", default="random,average,bandwagon")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/robustness"))
    args = ap.parse_args(argv)

    from fusionrec.data import load_dataset
    from fusionrec.data.splits import split
    from fusionrec.evaluation import Evaluator
    from fusionrec.models.classic.bpr import BPR
    from fusionrec.robustness import (
        ShillingAttack,
        detect_fake_profiles,
        inject_profiles,
        pick_targets,
        precision_recall,
    )
    from fusionrec.robustness.poisoning import target_hit_rate

    ds = load_dataset("ml-100k")
    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=args.seed)
    rng = np.random.default_rng(args.seed)
    targets = pick_targets(sp.train, args.targets, rng)
    real = np.arange(sp.train.n_users)
    ev = Evaluator(["ndcg"], ks=(10,))
    rows: list[dict] = []

    def run(label: str, attack: str, defence: str, train, adv: float = 0.0, pr=None) -> None:
        t = time.time()
        m = BPR(epochs=args.epochs, patience=0, adv_eps=adv).fit(train, seed=args.seed)
        ndcg = ev.evaluate(m, sp.test, exclude=(sp.train, sp.valid)).metrics["ndcg@10"]
        row = {"attack": attack, "defence": defence, "ndcg@10": ndcg,
               "target_hr@10": target_hit_rate(m, real, targets, 10),
               "target_hr@50": target_hit_rate(m, real, targets, 50), "seconds": time.time() - t}
        if pr is not None:
            row["det_precision"], row["det_recall"] = pr
        rows.append(row)
        print(label, json.dumps(row), flush=True)

    run("clean", "none", "none", sp.train)
    run("clean+apr", "none", "apr", sp.train, adv=args.adv_eps)
    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        att = ShillingAttack(kind=kind, targets=targets, n_profiles=args.profiles, filler_size=args.filler)
        poisoned, fake = inject_profiles(sp.train, att, rng)
        run(kind, kind, "none", poisoned)
        det = detect_fake_profiles(poisoned)
        pr = precision_recall(det.flagged, fake)
        run(kind + "+detector", kind, "detector", poisoned.with_interactions(~det.flagged[poisoned.user_idx]), pr=pr)
        run(kind + "+apr", kind, "apr", poisoned, adv=args.adv_eps)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attacks.json").write_text(json.dumps({"targets": list(targets), "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))
    print("| attack | defence | NDCG@10 | target HR@10 | target HR@50 | detector P / R |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        det = f"{r['det_precision']:.2f} / {r['det_recall']:.2f}" if "det_precision" in r else "—"
        print(f"| {r['attack']} | {r['defence']} | {r['ndcg@10']:.4f} | {r['target_hr@10']:.4f} | {r['target_hr@50']:.4f} | {det} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
