"""Shilling attacks on ml-100k (RS 8:1:1): overall NDCG@10 and the targets' hit rate, with and
without a defence, for several models.

Targets: ``--targets`` items drawn in the long tail (popularity-rank quantiles 0.5-0.8: above
the median, below the 20% most popular). ``--profiles`` fake users (50 = 5.3% of the users) with
``--filler`` filler items each: random/average filler drawn in proportion to popularity,
bandwagon filler from the 60 most popular items (``fusionrec.robustness.study.default_attack``).
Defences: the fake-profile detector (flagged users removed, then refit) and APR (BPR only).

    python benchmarks/robustness_benchmark.py --models bpr,ease,itemknn
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from _script_setup import add_seed_and_out, ml100k_rs_split, script_parser, write_json


def _fmt(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--models", default="bpr,ease,itemknn")
    ap.add_argument("--bpr-epochs", type=int, default=40)
    ap.add_argument("--profiles", type=int, default=50)
    ap.add_argument("--filler", type=int, default=40)
    ap.add_argument("--targets", type=int, default=5)
    ap.add_argument("--adv-eps", type=float, default=0.05)
    ap.add_argument("--threshold", type=float, default=8.0)
    ap.add_argument("--kinds", default="random,average,bandwagon")
    add_seed_and_out(ap, Path("benchmarks/results/robustness"))
    args = ap.parse_args(argv)

    from fusionrec.robustness.poisoning import pick_targets
    from fusionrec.robustness.study import default_attack, run_attack

    sp = ml100k_rs_split(args.seed)
    targets = pick_targets(sp.train, args.targets, np.random.default_rng(args.seed), quantile=(0.5, 0.8))
    kw = {"seed": args.seed, "apr_eps": args.adv_eps, "detector_threshold": args.threshold}
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        params = {"epochs": args.bpr_epochs, "patience": 0} if name == "bpr" else {}
        defences = ["detector", "apr"] if name == "bpr" else ["detector"]
        settings = [(None, "none")] + ([(None, "apr")] if name == "bpr" else [])
        for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
            att = default_attack(kind, targets, args.profiles, args.filler)
            settings += [(att, "none")] + [(att, d) for d in defences]
        for att, d in settings:
            r = run_attack(name, params, sp.train, sp.test, (sp.train, sp.valid), targets, att, d, **kw)  # type: ignore[arg-type]
            rows.append(r.as_dict())
            print(json.dumps(rows[-1]), flush=True)
    write_json(args.out, "attacks.json", {"targets": list(targets), "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows})
    print("| model | attack | defence | NDCG@10 | target HR@10 | target HR@50 | detector P / R | users removed |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        det = "—" if r["det_precision"] is None else f"{r['det_precision']:.2f} / {r['det_recall']:.2f}"
        print(f"| {r['model']} | {r['attack']} | {r['defence']} | {r['ndcg10']:.4f} | {_fmt(r['target_hr10'])} | {_fmt(r['target_hr50'])} | {det} | {r['removed_users']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
