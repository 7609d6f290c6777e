"""LightGCN at ~1M interactions: what ``max_steps_per_epoch`` costs in quality, beside BPR.

What it measures
    On one structured synthetic set (``fusionrec.data.make_synthetic``: latent user/item
    clusters, ``--clusters`` of them, ``--purity`` of each user's items from its own cluster,
    gamma item popularity; ``--users`` x ``--per-user`` interactions over ``--items`` items;
    RS 8:1:1, seed 2020), in one process, 1 torch thread:

    * BPR, ``--epochs`` epochs (the anchor);
    * LightGCN uncapped (``max_steps_per_epoch=None``: batch 4096, ~200 steps an epoch);
    * LightGCN capped (the default ``max_steps_per_epoch=64``: the batch grows to 1/64 of the
      training set), the same epochs;
    * LightGCN capped again with the epochs that fit the uncapped run's training CPU seconds
      (equal wall clock on a quiet machine; CPU seconds are used because the machine is shared);
    * BPR again with the epochs that fit the same CPU seconds (its registry default is 200
      epochs at lr 5e-3: at ``--epochs`` it is far from converged).

    For each: NDCG@10 and Recall@10 on ``--eval-users`` sampled test users (full ranking of
    every item, training and validation items masked), fit wall and CPU seconds, CPU seconds per
    epoch (the mean over epochs; the equal-time runs divide by the steady last epoch). The load
    average before and after is printed and written with the results.

How to run (repository root, fusionrec's virtualenv active)
    nice python benchmarks/lightgcn_scale.py                      # ~15 min on 2 quiet cores
    nice python benchmarks/lightgcn_scale.py --users 2000 --items 1000 --epochs 2   # smoke
    python benchmarks/lightgcn_scale.py --scoring   # ml-100k ms/user, cache dropped vs kept
Writes benchmarks/results/lightgcn_scale.json (``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _fit(name: str, params: dict, sp_, seed: int) -> dict:
    from fusionrec.models import get_model
    from fusionrec.training import FitOptions

    marks: list[float] = []
    model = get_model(name)(**params)
    t0, c0 = time.perf_counter(), time.process_time()
    marks.append(c0)
    model.fit(sp_.train, seed=seed, options=FitOptions(callbacks=(lambda e, r: marks.append(time.process_time()),)))
    out = {
        "model": name,
        "params": params,
        "fit_s": round(time.perf_counter() - t0, 1),
        "fit_cpu_s": round(time.process_time() - c0, 1),
    }
    if len(marks) > 1:
        steps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
        out["epochs"] = len(steps)
        out["epoch_cpu_s"] = round(sum(steps) / len(steps), 2)
        out["last_epoch_cpu_s"] = round(steps[-1], 2)
    return out | {"_model": model}


def _evaluate(model, sp_, n_users: int) -> dict:
    import numpy as np

    from fusionrec.evaluation.evaluator import Evaluator

    users = np.unique(sp_.test.user_idx)
    if n_users and len(users) > n_users:
        users = np.sort(np.random.default_rng(0).choice(users, n_users, replace=False))
    res = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate(model, sp_.test, exclude=(sp_.train, sp_.valid), users=users)
    return {"ndcg@10": round(float(res["ndcg@10"]), 4), "recall@10": round(float(res["recall@10"]), 4), "eval_users": int(len(users))}


def scoring_ms(reps: int = 300) -> dict:
    """ml-100k (RS 8:1:1, seed 2020, 1 epoch, 1 thread): ms per single-user ``score_indices``
    call with the cache kept (now) and with it dropped before every call (what ``eval()`` did
    before the cache survived it: a full propagation per request)."""
    import numpy as np

    from fusionrec.data import load_dataset, split
    from fusionrec.models.graph.lightgcn import LightGCN

    sp_ = split(load_dataset("ml-100k"), "rs", (0.8, 0.1, 0.1), seed=2020)
    m = LightGCN(epochs=1).fit(sp_.train, seed=0)
    out = {}
    for mode in ("cache dropped per call (before)", "cache kept (after)"):
        m.score_indices(np.arange(1))
        n0, t0 = m.module_.propagations, time.perf_counter()
        for r in range(reps):
            if mode.startswith("cache dropped"):
                m.module_.invalidate_cache()
            m.score_indices(np.array([r % m.n_users]))
        out[mode] = {"ms_per_user": round((time.perf_counter() - t0) / reps * 1e3, 3),
                     "propagations": m.module_.propagations - n0}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=25_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--per-user", type=int, default=40, help="interactions per user")
    p.add_argument("--clusters", type=int, default=50)
    p.add_argument("--purity", type=float, default=0.8)
    p.add_argument("--epochs", type=int, default=5, help="epochs of the equal-epoch runs")
    p.add_argument("--eval-users", type=int, default=2000)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument(
        "--runs",
        default="bpr,uncapped,capped,capped_equal_time,bpr_equal_time",
        help="comma list; NAME@E runs NAME with E epochs (e.g. capped@15, to run a share in parallel)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/lightgcn_scale.json"))
    p.add_argument("--scoring", action="store_true", help="only the ml-100k scoring ms/user")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    if a.scoring:
        print(json.dumps({"load": os.getloadavg(), **scoring_ms()}, indent=1))
        return 0
    from fusionrec.data import make_synthetic, split

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    ds = make_synthetic(
        a.users, a.items, a.per_user, seed=a.seed, n_clusters=a.clusters, purity=a.purity,
        modalities=(), kg=False, name="lightgcn-scale",
    )  # fmt: skip
    sp_ = split(ds, "rs", (0.8, 0.1, 0.1), seed=a.seed)
    data = {"n_interactions": int(ds.n_interactions), "n_users": int(ds.n_users), "n_items": int(ds.n_items),
            "n_train": int(sp_.train.n_interactions), "data_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(f"data: {data}  load average {load0}", flush=True)

    ep = {"epochs": a.epochs}
    plan = {
        "bpr": ("BPR", "bpr", ep),
        "uncapped": ("LightGCN uncapped (batch 4096)", "lightgcn", {**ep, "max_steps_per_epoch": None}),
        "capped": ("LightGCN capped (<= 64 steps)", "lightgcn", ep),
        "capped_equal_time": ("LightGCN capped, uncapped's CPU time", "lightgcn", None),
        "bpr_equal_time": ("BPR, uncapped LightGCN's CPU time", "bpr", None),
    }
    rows: list[dict] = []
    for key in a.runs.split(","):
        key, _, fixed = key.partition("@")  # "capped@15": that run with 15 epochs
        label, name, params = plan[key]
        if fixed:
            params = {**(params or plan[key.removesuffix("_equal_time")][2]), "epochs": int(fixed)}
            label = f"{label.split(',')[0]}, {fixed} epochs"
        if params is None:  # epochs that fit the uncapped run's training CPU seconds
            unc = next(r for r in rows if r["run"] == "uncapped")
            same = next(r for r in rows if r["run"] == key.removesuffix("_equal_time"))
            params = {"epochs": max(a.epochs, round(unc["fit_cpu_s"] / same["last_epoch_cpu_s"]))}
        from fusionrec.models.graph.lightgcn import epoch_batch_size

        r = _fit(name, params, sp_, a.seed)
        model = r.pop("_model")
        if name == "lightgcn":
            cfg = model.config
            bs = epoch_batch_size(sp_.train.n_interactions, cfg.batch_size, cfg.max_steps_per_epoch)
            r["batch"] = bs
            r["steps_per_epoch"] = -(-sp_.train.n_interactions // bs)
        r |= _evaluate(model, sp_, a.eval_users)
        r |= {"run": key, "label": label}
        rows.append(r)
        print(json.dumps(r), flush=True)
    load1 = os.getloadavg()
    out = {"data": data, "seed": a.seed, "threads": 1, "load_before": load0, "load_after": load1, "rows": rows,
           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}}  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(f"\nload average before {load0}, after {load1}")
    print("| run | epochs | batch | steps/epoch | CPU s/epoch | fit CPU s | fit wall s | NDCG@10 | Recall@10 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r.get('epochs', '-')} | {r.get('batch', '-')} | {r.get('steps_per_epoch', '-')} | "
              f"{r.get('epoch_cpu_s', '-')} | {r['fit_cpu_s']} | {r['fit_s']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
