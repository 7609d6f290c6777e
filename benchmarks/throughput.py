"""Training throughput (samples/second) of BPR, LightGCN and SASRec on MovieLens-100k, in
float32 and with bfloat16 autocast (``amp="bf16"``), on the shared Trainer.

What it measures
    Each (model, precision) pair is fitted for ``--epochs`` epochs with the model's registry
    defaults, ``seed`` fixed, no validation set (so no evaluation time is mixed in) and no early
    stopping. The Trainer records, per epoch, the training samples it consumed divided by the
    seconds of the epoch's training part (batch making, forward, backward, optimiser step).
    The table shows the mean over epochs 2..N (epoch 1 warms caches and allocators; with
    ``--epochs 1`` it is the only one), the mean epoch seconds and the last epoch's loss (the
    two precisions should train alike: a loss far apart means bf16 hurt). The "/CPU s" columns
    divide the same samples by the process's CPU seconds of those epochs: on one torch thread
    that is close to what a quiet machine shows, even when other work loads the machine. An
    identical loss in both precisions means autocast changed nothing in that model's loss (its
    ops are lookups and elementwise products, which autocast leaves in float32).

    Samples are the Trainer's unit for each model: one training interaction (a user, a
    positive and its sampled negatives) for BPR and LightGCN, one training sequence window (up
    to ``max_len`` next-item targets) for SASRec. Data: BPR and LightGCN train on the RS 8:1:1
    training part (seed 2020), SASRec on the leave-one-out training part.

    bf16 autocast speeds up matrix products only where the CPU has native bfloat16 (e.g.
    AVX512-BF16/AMX) or on a GPU; elsewhere it can be slower than float32. Sparse graph products
    stay float32 (torch's CPU sparse kernels have no bf16), so LightGCN gains little. Torch runs on
    ``cpu_threads`` intra-op threads (default 1, as in training). The numbers depend on the
    machine's load: the script prints the load average before and after.

How to run (repository root, fusionrec's virtualenv active)
    python benchmarks/throughput.py                                   # 3 epochs each
    python benchmarks/throughput.py --models lightgcn --epochs 5 --device cpu
    python benchmarks/throughput.py --output .bench/throughput.json
    python benchmarks/throughput.py --data power-law:1000000 --precisions none --epochs 2 \
        --peers implicit-bpr,implicit-als             # 1M power-law table beside implicit

    python benchmarks/throughput.py --models bpr,bpr-sgd,bpr-lazy --precisions none --epochs 3 \
        --data ml-100k,power-law:1000000 --peers implicit-bpr --threads 1,2   # the BPR comparison

    ``--data power-law:N`` trains on the whole generated table (no split); ``--peers`` fits
    implicit's CPU BPR and ALS (64 factors, ``--epochs`` iterations, the same threads) on the
    same interaction matrix as BPR. ``bpr-sgd`` is BPR with ``optimizer: sgd`` (row-sparse SGD,
    implicit's update; ``lr`` 200 for the batch-mean loss, about implicit's 0.05 per sample).
    ``--threads 1,2`` runs every model and peer at each thread count, in one run, and prints
    how many times faster implicit is, per wall second and per CPU second. ``bpr-lazy`` is the
    default Adam with ``adam_rows: lazy`` (RowAdam's row step even where ``auto`` picks the
    dense fused step).

    ``OMP_WAIT_POLICY`` is set to ``PASSIVE`` (unless already set) before torch and implicit
    load: on a machine shared with other jobs, OpenMP's default active wait spins while a peer
    thread is descheduled (measured here at load 15 on 2 cores: ``index_select`` took 100x the
    CPU time with 2 threads than with 1); passive waiting costs nothing on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

MODELS = ("bpr", "bpr-sgd", "bpr-lazy", "lightgcn", "sasrec", "two_tower")
#: benchmark variants: registry name and parameters over the model's defaults (``bpr-lazy``:
#: the default Adam forced onto the lazy row step, RowAdam, whatever the table size)
VARIANTS = {"bpr-sgd": ("bpr", {"optimizer": "sgd", "lr": 200.0}), "bpr-lazy": ("bpr", {"adam_rows": "lazy"})}
PRECISIONS = ("none", "bf16")
UNITS = {"sasrec": "sequences"}


def _data(seed: int, source: str = "ml-100k"):
    """{"rs": train part, "loo": train part}: ml-100k's splits, or for ``power-law:N`` the whole
    generated table (N interactions, ML-25M shape unless ``power-law:N:USERS:ITEMS``)."""
    from fusionrec.data import load_dataset, split

    if source.startswith("power-law:"):
        from fusionrec.data.synthetic import make_power_law

        parts = [int(float(x)) for x in source.split(":")[1:]]
        shape = {"n_users": parts[1], "n_items": parts[2]} if len(parts) == 3 else {}
        ds = make_power_law(parts[0], seed=seed, **shape)
        return {"rs": ds, "loo": ds}
    ds = load_dataset("ml-100k")
    return {
        "rs": split(ds, "rs", (0.8, 0.1, 0.1), seed=seed).train,
        "loo": split(ds, "loo", seed=seed).train,
    }


def measure(
    name: str, amp: str, train, epochs: int, seed: int, device: str, threads: int | None
) -> dict:
    """Fit ``name`` for ``epochs`` epochs under ``amp``; return its throughput record."""
    import numpy as np

    from fusionrec.experiment import RunOptions, fit_model, make_model

    cpu_marks = [time.process_time()]  # CPU clock after each epoch (the first: before the fit)

    def mark(epoch: int, record: dict) -> None:
        cpu_marks.append(time.process_time())

    # the device and threads are run options (never model params); fit only, no evaluation
    options = RunOptions(device=device, cpu_threads=threads, callbacks=(mark,))
    reg_name, params = VARIANTS.get(name, (name, {}))
    model = make_model(reg_name, {"epochs": epochs, "amp": amp, **params})
    t0 = time.perf_counter()
    fit_model(model, train, None, seed, options)
    wall = time.perf_counter() - t0
    recs = model.history_.records
    steady = recs[1:] or recs
    # an epoch's samples over its CPU seconds: on one torch thread, close to what a quiet machine
    # shows even when other work loads this one (epoch 1 also holds the set-up: left out)
    cpu_s = np.diff(cpu_marks)[1:] if len(recs) > 1 else np.diff(cpu_marks)
    samples = np.array([r["samples_per_s"] * r["seconds"] for r in steady])
    return {
        "model": name,
        "amp": amp,
        "unit": UNITS.get(name, "interactions"),
        "epochs": len(recs),
        "samples_per_s": float(np.mean([r["samples_per_s"] for r in steady])),
        "samples_per_cpu_s": float(samples.sum() / cpu_s.sum()) if cpu_s.sum() > 0 else 0.0,
        "epoch_s": float(np.mean([r["seconds"] for r in steady])),
        "last_loss": float(recs[-1]["loss"]),
        "fit_s": round(wall, 3),
        "device": str(model.device_),
        "threads": threads,
    }


def measure_implicit(kind: str, train, epochs: int, threads: int, seed: int) -> dict:
    """Fit implicit's CPU BPR or ALS (64 factors) for ``epochs`` iterations on the same matrix:
    interactions x iterations per second (BPR: one SGD sample per interaction per iteration;
    ALS: one pass over the interactions per alternating iteration)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    x = train.matrix("csr").astype("float32")
    cls = BayesianPersonalizedRanking if kind == "bpr" else AlternatingLeastSquares
    model = cls(factors=64, iterations=epochs, num_threads=threads, random_state=seed)
    from threadpoolctl import threadpool_limits

    # implicit asks for a single-threaded BLAS (its own threads parallelise over users)
    with threadpool_limits(1, "blas"):
        c0, t0 = time.process_time(), time.perf_counter()
        model.fit(x, show_progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = x.nnz * epochs
    return {
        "model": f"implicit {kind.upper()}",
        "unit": "interactions",
        "epochs": epochs,
        "samples_per_s": n / wall,
        "samples_per_cpu_s": n / cpu if cpu > 0 else 0.0,
        "epoch_s": wall / epochs,
        "threads": threads,
    }


def format_peer_table(rows: list[dict]) -> str:
    """Every run (fusionrec fp32 and peers) with its threads; the last two columns divide
    implicit BPR's samples per wall second and per CPU second at the same thread count by each
    row's ("implicit x faster": 1.00 for implicit itself, 3.00 = three times faster than us)."""
    ref = {r["threads"]: r for r in rows if r["model"] == "implicit BPR"}
    head = ["model", "threads", "samples/s", "/CPU s", "epoch s", "implicit x faster (wall)", "(CPU s)"]
    lines = [head]
    for r in rows:
        base = ref.get(r["threads"])

        def times(key: str, r: dict = r, base: dict | None = base) -> str:
            return f"{base[key] / r[key]:.2f}" if base and r[key] else "-"

        lines.append(
            [
                r["model"],
                str(r["threads"]),
                f"{r['samples_per_s']:,.0f}",
                f"{r['samples_per_cpu_s']:,.0f}",
                f"{r['epoch_s']:.2f}",
                times("samples_per_s"),
                times("samples_per_cpu_s"),
            ]
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_table(rows: list[dict]) -> str:
    head = [
        "model",
        "unit",
        "fp32 samples/s",
        "bf16 samples/s",
        "bf16/fp32",
        "fp32 /CPU s",
        "bf16 /CPU s",
        "fp32 epoch s",
        "bf16 epoch s",
        "fp32 loss",
        "bf16 loss",
    ]
    by = {(r["model"], r["amp"]): r for r in rows}
    lines = [head]
    for m in dict.fromkeys(r["model"] for r in rows):
        a, b = by.get((m, "none")), by.get((m, "bf16"))

        def f(r, k, fmt):
            return "-" if r is None else format(r[k], fmt)

        ratio = (
            f"{b['samples_per_s'] / a['samples_per_s']:.2f}"
            if a and b and a["samples_per_s"]
            else "-"
        )
        unit = (a or b)["unit"]
        lines.append(
            [
                m,
                unit,
                f(a, "samples_per_s", ",.0f"),
                f(b, "samples_per_s", ",.0f"),
                ratio,
                f(a, "samples_per_cpu_s", ",.0f"),
                f(b, "samples_per_cpu_s", ",.0f"),
                f(a, "epoch_s", ".2f"),
                f(b, "epoch_s", ".2f"),
                f(a, "last_loss", ".4f"),
                f(b, "last_loss", ".4f"),
            ]
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = []
    for n, r in enumerate(lines):
        out.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models", default=",".join(MODELS), help=f"comma list from {', '.join(MODELS)}"
    )
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma list from none,bf16")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument(
        "--threads",
        default="1",
        help="comma list of torch/implicit CPU thread counts, each run in turn (default 1; 0 = one per CPU)",
    )
    p.add_argument(
        "--data",
        default="ml-100k",
        help="comma list of ml-100k (default) and power-law:N[:USERS:ITEMS] (fusionrec.data.synthetic.make_power_law), each run in turn",
    )
    p.add_argument(
        "--peers",
        default="",
        help="comma list from implicit-bpr,implicit-als: implicit's CPU models on the same BPR data and threads",
    )
    p.add_argument("--output", default=None, help="also write the records as JSON here")
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch/implicit load OpenMP
    thread_counts = [int(x) or (os.cpu_count() or 1) for x in str(a.threads).split(",") if x.strip()]
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    precisions = [x.strip() for x in a.precisions.split(",") if x.strip()]
    bad = [m for m in models if m not in MODELS] + [x for x in precisions if x not in PRECISIONS]
    if bad or a.epochs < 1:
        print(
            f"error: unknown model/precision {bad} (models: {', '.join(MODELS)}; precisions: {', '.join(PRECISIONS)}) or --epochs < 1",
            file=sys.stderr,
        )
        return 2
    load_before = os.getloadavg()
    print(
        f"[setup] load average before: {' '.join(f'{x:.2f}' for x in load_before)} on {os.cpu_count()} CPUs; {platform.processor() or platform.machine()}",
        flush=True,
    )
    rows, peers = [], []
    sources = [x.strip() for x in a.data.split(",") if x.strip()]
    for source in sources:
        t_data = time.perf_counter()
        data = _data(a.seed, source)
        print(
            f"[setup] data {source}: {data['rs'].n_users:,} users x {data['rs'].n_items:,} items, "
            f"{data['rs'].n_interactions:,} interactions ({time.perf_counter() - t_data:.1f} s)",
            flush=True,
        )
        for threads in thread_counts:
            for m in models:
                for amp in precisions:
                    train = data["loo" if m == "sasrec" else "rs"]
                    rec = measure(m, amp, train, a.epochs, a.seed, a.device, threads) | {"data": source}
                    print(
                        f"[run] {source} {m} amp={amp} threads={threads}: {rec['samples_per_s']:,.0f} {rec['unit']}/s, {rec['epoch_s']:.2f} s/epoch",
                        flush=True,
                    )
                    rows.append(rec)
            for peer in [x.strip() for x in a.peers.split(",") if x.strip()]:
                rec = measure_implicit(peer.removeprefix("implicit-"), data["rs"], a.epochs, threads, a.seed) | {"data": source}
                print(f"[run] {source} {rec['model']} threads={threads}: {rec['samples_per_s']:,.0f} interactions/s", flush=True)
                peers.append(rec)
    load_after = os.getloadavg()
    for source in sources:
        for threads in thread_counts:
            print(f"\n{source}, {threads} thread(s)")
            print(format_table([r for r in rows if r["threads"] == threads and r["data"] == source]))
        if peers:
            print(f"\n{source} against implicit")
            ours = [
                {**r, "model": f"fusionrec {r['model']}"}
                for r in rows
                if r["amp"] == "none" and r["model"].startswith("bpr") and r["data"] == source
            ]
            theirs = [r for r in peers if r["data"] == source]
            print(format_peer_table(sorted(ours + theirs, key=lambda r: r["threads"])))
    print(
        f"\nload average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}  after: {' '.join(f'{x:.2f}' for x in load_after)}  ({os.cpu_count()} CPUs, threads {thread_counts}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, device {rows[0]['device'] if rows else a.device})"
    )
    if a.output:
        out = Path(a.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "load_before": load_before,
                    "load_after": load_after,
                    "epochs": a.epochs,
                    "seed": a.seed,
                    "data": a.data,
                    "results": rows,
                    "peers": peers,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
