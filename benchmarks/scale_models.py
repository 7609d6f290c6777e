"""Closed forms and SASRec on large catalogues: seconds, peak memory and NDCG@10, one child
process per measurement (so each peak RSS is that fit's own).

What it measures
    ml100k     EASE (dense, torch) vs ease_large (diagonal + low-rank, ranks 256/512) on
               ml-100k RS 8:1:1 (seed 2020): NDCG@10 on every test user, fit seconds, peak RSS.
    ease25k    the same pair on a synthetic 25k-item power-law catalogue
               (fusionrec.data.synthetic.make_power_law), NDCG@10 on ``--eval-users`` test users.
    large59k   ease_large alone on 59k items (dense EASE would need ~28 GB in float32; it is
               also run to show the refusal message).
    sasrec-speed  SASRec at the issue's shape (31k users x 25k items, same generator): seconds of
               each epoch's training part apart from its validation pass (wall and CPU), full
               softmax vs the sampled default (256, popularity pool + logQ), and the sampled
               run validating on 3,000 sampled users (``valid_users``); the ratio is printed.
    sasrec     SASRec full softmax vs sampled softmax on a synthetic 25k-item catalogue with
               real sequential structure (``markov_sequences``: each item has 4 successors
               users follow 70% of the time), leave-one-out, full ranking of all 25k items:
               Pop, the full softmax and each ``--sasrec-sampled`` run under the same epoch cap
               (``--sasrec-epochs``, early stopping on validation NDCG@10, patience 3); a run
               marked ``x`` gets the epochs that fit the full softmax's training seconds.

    lightgcn   LightGCN with and without its cap on steps per epoch (max_steps_per_epoch=64)
               beside BPR, same epochs (``--graph-epochs``), on ~1M interactions of the same
               Markov generator (RS 8:1:1): NDCG@10 and seconds per epoch.

    Peak RSS includes the data (generation and split); the ``data only`` row gives that base.
    Synthetic interactions carry popularity only (no planted taste), so their NDCG@10 compares
    the two EASE forms with each other, not with ml-100k. The script prints the load average:
    on a shared machine the seconds are inflated by other work.

How to run (repository root, fusionrec's virtualenv active)
    python benchmarks/scale_models.py                            # every part (tens of minutes)
    python benchmarks/scale_models.py --parts ml100k,large59k
    python benchmarks/scale_models.py --parts sasrec --sasrec-epochs 15 --sasrec-sampled 256,256p,256x
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PARTS = ("ml100k", "ease25k", "large59k", "sasrec-speed", "sasrec", "lightgcn")


def markov_sequences(
    n_users: int,
    n_items: int,
    mean_len: float,
    seed: int,
    *,
    successors: int = 4,
    follow: float = 0.7,
):
    """Synthetic next-item data with real sequential structure, for SASRec at catalogue scale.

    Items have Zipf-like popularity (weight 1 / (rank + 10), ranks permuted); every item has
    ``successors`` fixed successor items drawn by popularity, chosen with weights 8:4:2:1...
    A user starts at a popular item and at each step moves, with probability ``follow``, to one
    of the current item's successors, else to a popularity draw. Lengths are lognormal around
    ``mean_len`` (at least 5); a repeated item is dropped (keeps the first visit), so (user,
    item) pairs are unique and a held-out item is never masked as seen. Timestamps are the step.
    The best possible top-10 list holds the last item's successors: Hit@10 up to about
    ``follow`` (a model that learned nothing sequential sees popularity only).
    """
    import numpy as np
    import pandas as pd

    from fusionrec.data import Dataset
    from fusionrec.data.idmap import IdMap

    rng = np.random.default_rng(seed)
    w = 1.0 / (np.arange(n_items) + 10.0)
    pop = np.empty(n_items)
    pop[rng.permutation(n_items)] = w / w.sum()
    succ = rng.choice(n_items, size=(n_items, successors), p=pop)
    succ_p = 2.0 ** -np.arange(successors)
    succ_p /= succ_p.sum()
    lens = np.clip(rng.lognormal(np.log(mean_len) - 0.18, 0.6, n_users), 5, 20 * mean_len)
    lens = lens.astype(np.int64)
    steps = int(lens.max())
    cur = rng.choice(n_items, size=n_users, p=pop)
    walk = np.empty((n_users, steps), dtype=np.int64)
    walk[:, 0] = cur
    for t in range(1, steps):
        pick = rng.choice(successors, size=n_users, p=succ_p)
        nxt = np.where(
            rng.random(n_users) < follow, succ[cur, pick], rng.choice(n_items, n_users, p=pop)
        )
        walk[:, t] = cur = nxt
    keep = np.arange(steps)[None, :] < lens[:, None]
    users = np.repeat(np.arange(n_users, dtype=np.int64), steps)[keep.ravel()]
    step = np.tile(np.arange(steps, dtype=np.int64), n_users)[keep.ravel()]
    items = walk.ravel()[keep.ravel()]
    first = ~pd.Series(users * n_items + items).duplicated().to_numpy()
    users, items, step = users[first], items[first], step[first]
    return Dataset(
        users=IdMap(np.char.add("u", np.arange(n_users).astype(str)), name="user"),
        items=IdMap(np.char.add("i", np.arange(n_items).astype(str)), name="item"),
        user_idx=users,
        item_idx=items,
        timestamp=step.astype(np.float64),
        name=f"markov-{n_users}x{n_items}",
    )


def _load(spec: dict):
    from fusionrec.data import load_dataset, split

    src = spec["data"]
    if src.startswith("markov:"):
        u, i, m = src.split(":")[1:]
        ds = markov_sequences(int(u), int(i), float(m), spec["seed"])
    elif src.startswith("power-law:"):
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
    cpu_marks = [time.process_time()]  # CPU clock at the end of each epoch (torch models)
    # (wall, CPU) when each epoch's batches start and run out: the rest of the epoch is the
    # optimiser's last step and the validation pass, so training and validation are separated
    train_marks: list[tuple[float, float, float, float]] = []
    wall_marks = [time.perf_counter()]

    def mark(epoch: int, record: dict) -> None:
        cpu_marks.append(time.process_time())
        wall_marks.append(time.perf_counter())

    batches = getattr(model, "batches", None)
    if callable(batches):

        def timed_batches(dataset, rng):
            w0, c0 = time.perf_counter(), time.process_time()
            yield from batches(dataset, rng)
            train_marks.append((w0, c0, time.perf_counter(), time.process_time()))

        model.batches = timed_batches

    from fusionrec.training import FitOptions

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        model.fit(sp_.train, valid, seed=spec["seed"], options=FitOptions(callbacks=(mark,)))
    except Exception as e:  # the refusal message is part of the result
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    out["fit_s"] = round(time.perf_counter() - t0, 1)
    out["fit_cpu_s"] = round(time.process_time() - c0, 1)
    hist = getattr(model, "history_", None)
    if hist is not None and hist.records:
        out["epochs"] = len(hist.records)
        out["epoch_s"] = round(float(np.mean([r["seconds"] for r in hist.records])), 2)
        # CPU seconds per epoch, training and validation: on a loaded machine the wall clock
        # says more about the other jobs than about the model
        out["epoch_cpu_s"] = round(float(np.mean(np.diff(cpu_marks))), 2)
        if len(train_marks) == len(hist.records):
            tw = [w1 - w0 for w0, _, w1, _ in train_marks]
            tc = [c1 - c0 for _, c0, _, c1 in train_marks]
            out["train_s"] = round(float(np.mean(tw)), 2)
            out["train_cpu_s"] = round(float(np.mean(tc)), 2)
            # validation: from the batches' end to the epoch's end (a final step included)
            vw = [wall_marks[e + 1] - train_marks[e][2] for e in range(len(train_marks))]
            vc = [cpu_marks[e + 1] - train_marks[e][3] for e in range(len(train_marks))]
            out["valid_s"] = round(float(np.mean(vw)), 2)
            out["valid_cpu_s"] = round(float(np.mean(vc)), 2)
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
    if "sasrec-speed" in parts:
        # the shape (31k users x ~25k items): per-epoch training time apart from the
        # validation pass, full softmax vs the sampled default (popularity pool + logQ)
        q = {**base, "data": f"markov:{a.speed_users}:25000:{a.sasrec_len}", "protocol": "loo"}
        q = {**q, "early_stop": True, "evaluate": False}
        ep = {"epochs": a.speed_epochs, "patience": 0}
        pool = {"sampled_negatives": 256, "negative_sampling": "popularity"}
        runs += [
            (f"{a.speed_users // 1000}k seq SASRec full softmax", {**q, "model": "sasrec", "params": {**ep, "epochs": a.speed_full_epochs}}),
            (f"{a.speed_users // 1000}k seq SASRec sampled 256 pop+logQ", {**q, "model": "sasrec", "params": {**ep, **pool}}),
            (f"{a.speed_users // 1000}k seq SASRec sampled 256p, valid_users 3000", {**q, "model": "sasrec", "params": {**ep, **pool, "valid_users": 3000}}),
        ]  # fmt: skip
    if "sasrec" in parts:
        # same data, same split, same epoch cap and early stopping; then the sampled model
        # again with the full softmax's wall-clock (epoch cap x the per-epoch speed-up)
        q = {**base, "data": f"markov:{a.sasrec_users}:25000:{a.sasrec_len}", "protocol": "loo"}
        q = {**q, "early_stop": True}
        cap = {"epochs": a.sasrec_epochs, "patience": 3}
        runs += [("25k seq Pop", {**q, "model": "pop", "early_stop": False})]
        runs += [("25k seq SASRec full softmax", {**q, "model": "sasrec", "params": cap})]
        for spec in a.sasrec_sampled.split(","):
            label, params = _sampled_params(spec)
            runs.append((f"25k seq SASRec {label}", {**q, "model": "sasrec", "params": {**cap, **params}}))
    if "lightgcn" in parts:
        # the step cap's effect on quality where it binds: ~1M interactions with graph signal
        d = {**base, "data": f"markov:{a.graph_users}:20000:40", "eval_users": a.eval_users}
        ep = {"epochs": a.graph_epochs}
        runs += [
            ("1M seq-graph BPR", {**d, "model": "bpr", "params": ep}),
            ("1M seq-graph LightGCN batch 4096", {**d, "model": "lightgcn", "params": {**ep, "max_steps_per_epoch": None}}),
            ("1M seq-graph LightGCN <=64 steps", {**d, "model": "lightgcn", "params": ep}),
        ]  # fmt: skip
    return runs


def _sampled_params(spec: str) -> tuple[str, dict]:
    """'256' -> uniform pool of 256 (logQ); '256p' -> popularity-sampled pool with logQ;
    a trailing 'x' multiplies the epoch cap by the measured speed-up (equal wall clock)."""
    equal_time = spec.endswith("x")
    spec = spec.rstrip("x")
    pop = spec.endswith("p")
    n = int(spec.rstrip("p"))
    params: dict = {"sampled_negatives": n, "negative_sampling": "popularity" if pop else "uniform"}
    label = f"sampled {n}" + (" pop+logQ" if pop else " uniform")
    if equal_time:
        params["_equal_time"] = True
        label += ", full's wall clock"
    return label, params


def _equal_time(spec: dict, rows: list[dict]) -> dict:
    """A sampled run marked ``_equal_time`` gets the epoch cap that fits the full softmax's
    training seconds at the per-epoch speed of the same sampled run measured before it."""
    params = dict(spec.get("params", {}))
    if not params.pop("_equal_time", False):
        return spec
    full = next(r for r in rows if r.get("model") == "sasrec" and not r["params"].get("sampled_negatives"))
    same = next(
        r for r in rows
        if r.get("model") == "sasrec" and {**r["params"], "epochs": 0} == {**params, "epochs": 0}
    )  # fmt: skip
    budget = full["epoch_cpu_s"] * full["epochs"]  # CPU seconds: the wall clock is shared
    params["epochs"] = max(params["epochs"], int(budget / same["epoch_cpu_s"]))
    return {**spec, "params": params}


def speed_ratios(rows: list[dict]) -> list[str]:
    """Full softmax over each sampled run, per epoch's training part (wall and CPU), for the
    runs on the same data that recorded their training time."""
    out = []
    for full in rows:
        fp = full.get("params") or {}
        if full.get("model") != "sasrec" or fp.get("sampled_negatives") or "train_s" not in full:
            continue
        for r in rows:
            rp = r.get("params") or {}
            if r.get("data") == full["data"] and rp.get("sampled_negatives") and "train_s" in r:
                out.append(
                    f"{r['label']}: training part {full['train_s'] / r['train_s']:.1f}x faster "
                    f"(wall), {full['train_cpu_s'] / r['train_cpu_s']:.1f}x (CPU) than the full "
                    f"softmax; epoch with validation {full['epoch_cpu_s'] / r['epoch_cpu_s']:.1f}x (CPU)"
                )
    return out


def fmt(label: str, r: dict) -> str:
    if r.get("error"):
        return f"{label:36s} peak {r['peak_rss_gb']:6.2f} GB  {r['error']}"
    parts = [f"{label:36s}", f"items {r.get('n_items', 0):>6,}"]
    if "fit_s" in r:
        parts.append(f"fit {r['fit_s']:8.1f} s ({r['fit_cpu_s']:.1f} CPU s)")
    if "epoch_s" in r:
        parts.append(f"{r['epoch_s']:7.2f} s/epoch ({r['epoch_cpu_s']:.2f} CPU s) x{r['epochs']}")
    if "train_s" in r:
        parts.append(f"train {r['train_s']:.2f} s ({r['train_cpu_s']:.2f} CPU s)")
        parts.append(f"valid {r['valid_s']:.2f} s ({r['valid_cpu_s']:.2f} CPU s) /epoch")
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
    p.add_argument("--sasrec-users", type=int, default=4000)
    p.add_argument("--sasrec-len", type=float, default=30.0, help="mean sequence length")
    p.add_argument("--sasrec-epochs", type=int, default=15, help="epoch cap of the equal-epoch runs")
    p.add_argument(
        "--sasrec-sampled",
        default="256,256p,256px",
        help="sampled runs: N (uniform pool), Np (popularity pool + logQ), suffix x = full's wall clock",
    )
    p.add_argument("--speed-users", type=int, default=31_000, help="sasrec-speed part: users")
    p.add_argument("--speed-epochs", type=int, default=2, help="sasrec-speed: sampled runs' epochs")
    p.add_argument("--speed-full-epochs", type=int, default=1, help="sasrec-speed: full softmax epochs")
    p.add_argument("--graph-users", type=int, default=25_000, help="lightgcn part: users (x40)")
    p.add_argument("--graph-epochs", type=int, default=5, help="lightgcn part: epochs of each fit")
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
        spec = _equal_time(spec, rows)
        rec = run_child(spec)
        rows.append({"label": label, **rec})
        print(fmt(label, rec), f"[load {os.getloadavg()[0]:.2f}]", flush=True)
    for line in speed_ratios(rows):
        print(line)
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
