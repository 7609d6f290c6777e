"""Closed forms and SASRec on large catalogues: seconds, peak memory and NDCG@10, one child
process per measurement (so each peak RSS is that fit's own).

What it measures
    ml100k     EASE (dense, torch) vs ease_large (diagonal + low-rank, ranks 256/512) on
               ml-100k RS 8:1:1 (seed 2020): NDCG@10 on every test user, fit seconds, peak RSS.
    ease25k    the same pair on a synthetic 25k-item power-law catalogue
               (fusionrec.data.synthetic.make_power_law), NDCG@10 on ``--eval-users`` test users.
    large59k   ease_large alone on 59k items (dense EASE would need ~28 GB in float32; it is
               also run to show the refusal message).
    sasrec     SASRec seconds per epoch, full softmax vs sampled softmax (256 negatives, logQ),
               on a synthetic 25k-item catalogue; and NDCG@10 of both on ml-100k leave-one-out
               (``--sasrec-epochs`` cap, early stopping on validation, patience 3).

    Peak RSS includes the data (generation and split); the ``data only`` row gives that base.
    Synthetic interactions carry popularity only (no planted taste), so their NDCG@10 compares
    the two EASE forms with each other, not with ml-100k. The script prints the load average:
    on a shared machine the seconds are inflated by other work.

How to run (repository root, fusionrec's virtualenv active)
    python benchmarks/scale_models.py                            # every part (tens of minutes)
    python benchmarks/scale_models.py --parts ml100k,large59k
    python benchmarks/scale_models.py --parts sasrec --sasrec-epochs 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PARTS = ("ml100k", "ease25k", "large59k", "sasrec")


def _load(spec: dict):
    from fusionrec.data import load_dataset, split

    src = spec["data"]
    if src.startswith("power-law:"):
        from fusionrec.data.synthetic import make_power_law

        n, u, i = (int(float(x)) for x in src.split(":")[1:])
        ds = make_power_law(n, seed=spec["seed"], n_users=u, n_items=i)
    else:
        ds = load_dataset(src)
    if spec.get("protocol") == "loo":
        return split(ds, "loo", seed=spec["seed"])
    return split(ds, "rs", (0.8, 0.1, 0.1), seed=spec["seed"])


def child(spec: dict) -> dict:
    """Run one measurement (in this process) and return its record."""
    import numpy as np

    from fusionrec.evaluation.evaluator import Evaluator
    from fusionrec.models import get_model

    t0 = time.perf_counter()
    sp_ = _load(spec)
    out = {"data_s": round(time.perf_counter() - t0, 1), "n_items": sp_.train.n_items}
    if spec["model"] is None:
        return out
    model = get_model(spec["model"])(**spec.get("params", {}))
    valid = sp_.valid if spec.get("early_stop") else None
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        model.fit(sp_.train, valid, seed=spec["seed"])
    except Exception as e:  # the refusal message is part of the result
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    out["fit_s"] = round(time.perf_counter() - t0, 1)
    out["fit_cpu_s"] = round(time.process_time() - c0, 1)
    hist = getattr(model, "history_", None)
    if hist is not None and hist.records:
        out["epochs"] = len(hist.records)
        out["epoch_s"] = round(float(np.mean([r["seconds"] for r in hist.records])), 2)
    if spec.get("evaluate", True):
        users = np.unique(sp_.test.user_idx)
        n = spec.get("eval_users")
        if n and len(users) > n:
            users = np.sort(np.random.default_rng(0).choice(users, n, replace=False))
        ev = Evaluator(metrics=("ndcg",), ks=(10,))
        t0 = time.perf_counter()
        res = ev.evaluate(model, sp_.test, exclude=(sp_.train, sp_.valid), users=users)
        out["ndcg@10"] = round(float(res["ndcg@10"]), 4)
        out["eval_users"] = int(len(users))
        out["eval_s"] = round(time.perf_counter() - t0, 1)
    return out


def run_child(spec: dict) -> dict:
    """``child(spec)`` in a fresh process; adds its peak RSS (from wait4) and wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(spec)], stdout=subprocess.PIPE, text=True
    )
    out_text = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in out_text.splitlines() if ln.startswith("{")]
    rec = json.loads(lines[-1]) if lines else {"error": f"child exited with {proc.returncode}"}
    rec["peak_rss_gb"] = round(usage.ru_maxrss / 1024**2, 2)
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return {**spec, **rec}


def plan(parts: list[str], a: argparse.Namespace) -> list[tuple[str, dict]]:
    base = {"seed": a.seed}
    syn25 = f"power-law:{a.ease_interactions}:{a.ease_users}:25000"
    syn59 = f"power-law:{a.large_interactions}:{a.large_users}:59000"
    runs: list[tuple[str, dict]] = []
    if "ml100k" in parts:
        d = {**base, "data": "ml-100k"}
        runs += [
            ("ml-100k EASE", {**d, "model": "ease"}),
            ("ml-100k ease_large r256", {**d, "model": "ease_large", "params": {"rank": 256}}),
            ("ml-100k ease_large r512", {**d, "model": "ease_large", "params": {"rank": 512}}),
        ]
    if "ease25k" in parts:
        d = {**base, "data": syn25, "eval_users": a.eval_users}
        runs += [
            ("25k data only", {**d, "model": None}),
            ("25k EASE (float32)", {**d, "model": "ease"}),
            ("25k ease_large r512", {**d, "model": "ease_large", "params": {"rank": 512}}),
        ]
    if "large59k" in parts:
        d = {**base, "data": syn59, "eval_users": a.eval_users}
        runs += [
            ("59k data only", {**d, "model": None}),
            ("59k EASE (float32)", {**d, "model": "ease"}),
            ("59k ease_large r512", {**d, "model": "ease_large", "params": {"rank": 512}}),
        ]
    if "sasrec" in parts:
        syn = f"power-law:{a.sasrec_interactions}:{a.sasrec_users}:25000"
        sampled = {"sampled_negatives": 256}
        speed = {**base, "data": syn, "protocol": "loo", "evaluate": False}
        runs += [
            (
                "25k SASRec full softmax, 1 epoch",
                {**speed, "model": "sasrec", "params": {"epochs": 1}},
            ),
            (
                "25k SASRec sampled 256, 1 epoch",
                {**speed, "model": "sasrec", "params": {"epochs": 1, **sampled}},
            ),
        ]
        q = {**base, "data": "ml-100k", "protocol": "loo", "early_stop": True}
        cap = {"epochs": a.sasrec_epochs, "patience": 3}
        runs += [
            ("ml-100k loo SASRec full softmax", {**q, "model": "sasrec", "params": cap}),
            (
                "ml-100k loo SASRec sampled 256",
                {**q, "model": "sasrec", "params": {**cap, **sampled}},
            ),
        ]
    return runs


def fmt(label: str, r: dict) -> str:
    if r.get("error"):
        return f"{label:36s} peak {r['peak_rss_gb']:6.2f} GB  {r['error']}"
    parts = [f"{label:36s}", f"items {r.get('n_items', 0):>6,}"]
    if "fit_s" in r:
        parts.append(f"fit {r['fit_s']:8.1f} s")
    if "epoch_s" in r:
        parts.append(f"{r['epoch_s']:7.2f} s/epoch x{r['epochs']}")
    if "ndcg@10" in r:
        parts.append(f"NDCG@10 {r['ndcg@10']:.4f} ({r['eval_users']:,} users)")
    parts.append(f"peak {r['peak_rss_gb']:6.2f} GB")
    parts.append(f"wall {r['wall_s']:.0f} s")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list from {', '.join(PARTS)}")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--ease-interactions", type=int, default=1_000_000)
    p.add_argument("--ease-users", type=int, default=20_000)
    p.add_argument("--large-interactions", type=int, default=2_000_000)
    p.add_argument("--large-users", type=int, default=40_000)
    p.add_argument(
        "--eval-users", type=int, default=2000, help="test users ranked on synthetic data"
    )
    p.add_argument("--sasrec-interactions", type=int, default=300_000)
    p.add_argument("--sasrec-users", type=int, default=6000)
    p.add_argument("--sasrec-epochs", type=int, default=30)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--output", default=None, help="also write the records as JSON here")
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(json.loads(a.child))), flush=True)
        return 0
    parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        print(f"error: unknown part(s) {bad}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    load0 = os.getloadavg()
    print(
        f"[setup] load average before: {' '.join(f'{x:.2f}' for x in load0)} on {os.cpu_count()} CPUs",
        flush=True,
    )
    rows = []
    for label, spec in plan(parts, a):
        rec = run_child(spec)
        rows.append({"label": label, **rec})
        print(fmt(label, rec), flush=True)
    load1 = os.getloadavg()
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in load0)}  after: {' '.join(f'{x:.2f}' for x in load1)}"
    )
    if a.output:
        with open(a.output, "w") as fh:
            json.dump({"load_before": load0, "load_after": load1, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
