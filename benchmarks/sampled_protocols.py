"""Full ranking vs RecBole's sampled protocols (uni100, pop100) for the same fitted models.

    python benchmarks/sampled_protocols.py [--configs configs/ease.yaml,configs/bpr.yaml]
        [--protocols full,uni100,pop100] [--seeds 2020,2021,2022] [--set train.epochs=30]

Each config is fitted once (``fusionrec.experiment.run``), then its test split is evaluated
under every protocol; sampled protocols are repeated over the negative-sampling seeds given
and reported as mean ± std. Sampled figures are not comparable with full ranking: the table
shows how far apart they are on the same model.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fusionrec.evaluation import Evaluator
from fusionrec.experiment import RunOptions, prepare, run
from fusionrec.experiment.config import load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="configs/ease.yaml,configs/bpr.yaml")
    ap.add_argument("--protocols", default="full,uni100,pop100")
    ap.add_argument("--seeds", default="2020,2021,2022")
    ap.add_argument("--set", action="append", default=[], help="override for the torch configs, e.g. train.epochs=30 (repeatable)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for path in args.configs.split(","):
        cfg = load_config(path)
        if args.set and cfg.model.name not in ("ease", "pop", "itemknn"):  # closed forms have no train section
            cfg = load_config(path, args.set)
        t0 = time.perf_counter()
        res = run(cfg, RunOptions())
        fit_s = time.perf_counter() - t0
        model = res.recommender
        split = prepare(cfg.data, cfg.seed).split  # the split run() used (same data section and seed)
        for proto in args.protocols.split(","):
            vals: dict[str, list[float]] = {}
            secs = []
            for s in seeds if proto != "full" else seeds[:1]:
                t1 = time.perf_counter()
                ev = Evaluator(metrics=("ndcg", "recall", "hit"), ks=(10,), protocol=proto, seed=s)
                r = ev.evaluate_split(model, split, "test")
                secs.append(time.perf_counter() - t1)
                for k, v in r.metrics.items():
                    vals.setdefault(k, []).append(v)
            row = {"model": cfg.model.name, "protocol": r.protocol, "sampled": r.sampled, "fit_s": round(fit_s, 1), "eval_s": round(float(np.mean(secs)), 2)}
            for k, v in vals.items():
                row[k] = round(float(np.mean(v)), 4)
                if len(v) > 1:
                    row[k + "_std"] = round(float(np.std(v)), 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
