"""End to end at 1M / 5M / 25M interactions: seconds and peak RSS per stage, table and plot.

    python benchmarks/scale_e2e.py --size 1m                  # one size (about a minute)
    python benchmarks/scale_e2e.py --size 1m,5m,25m --plot .bench/scale_e2e.png --json .bench/scale_e2e.json
    python benchmarks/scale_e2e.py --size 5m --bpr optimizer=adam,lr=0.005   # BPR's default optimiser
    python benchmarks/scale_e2e.py --merge .bench/e2e_1m.json,.bench/e2e_5m.json,.bench/e2e_25m.json \
        --plot docs/img/scale_e2e.png                                   # table + plot of earlier runs

Data: ``fusionrec.data.synthetic.make_power_law`` (MovieLens-25M's shape: 25M rows = 162k
users x 59k items; 1M = 6.5k x 11.8k), written once to ``--workdir`` as Parquet (or CSV with
``--format csv``) through ``fusionrec.data.bulk.write_interactions``; generating and writing are
not part of the pipeline. Each size runs in a fresh child process, which does what a user's
script does, stage by stage:

1. ``load``: ``load_table`` (pyarrow fast path: ids dictionary-encoded, checks on whole columns);
2. ``filter``: 5-core filter (users and items with at least 5 interactions);
3. ``split``: random 80/10/10 (``split(..., "rs")``);
4. ``pop``: Pop fit and full-ranking evaluation of every test user (train and valid masked);
5. ``bpr_epoch``: BPR, one epoch over the training part (``--bpr`` params; default the
   row-sparse SGD path, ``optimizer=sgd, lr=200``), one torch thread per core (``--threads``);
6. ``bpr_eval``: full-ranking evaluation of every test user (NDCG@10, Recall@10), in blocks.

Children run with ``OMP_WAIT_POLICY=PASSIVE`` unless it is set (see benchmarks/throughput.py).
Peak RSS per stage is sampled every 20 ms by a thread (``psutil``), the process's overall peak is
``ru_maxrss``. Goal (issue 13): 25M under 45 minutes wall in total, peak RSS <= 8 GB. Not a
timed test: seconds depend on the machine and its load (the script prints the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STAGES = ("load", "filter", "split", "pop", "bpr_epoch", "bpr_eval")
BPR_DEFAULT = {"optimizer": "sgd", "lr": 200.0}


class PeakRSS:
    """Highest resident set size seen by a 20 ms sampling thread between ``reset`` calls."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def reset(self) -> float:
        """Peak MiB since the last reset (then start over from the current RSS)."""
        peak = max(self._peak, self._proc.memory_info().rss)
        self._peak = self._proc.memory_info().rss
        return peak / 2**20

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _params(text: str) -> dict:
    out: dict = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v.strip()
    return out


def _generate(n: int, path: Path) -> dict:
    from fusionrec.data.bulk import write_interactions
    from fusionrec.data.synthetic import make_power_law

    t0 = time.perf_counter()
    ds = make_power_law(n, seed=0)
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_interactions(ds, path)
    return {"generate_s": round(gen, 1), "write_s": round(time.perf_counter() - t0, 1), "file_mib": round(path.stat().st_size / 2**20, 1)}


def _pipeline(path: Path, bpr_params: dict, threads: int) -> dict:
    """Run the stages on ``path``; one record with seconds and peak MiB per stage."""
    from fusionrec.data import filter_kcore, load_table, split
    from fusionrec.evaluation import Evaluator
    from fusionrec.experiment import RunOptions, fit_model, make_model

    rss = PeakRSS()
    rss.reset()
    rec: dict = {"threads": threads, "bpr_params": bpr_params}

    def stage(name: str, t0: float, c0: float) -> None:
        rec[f"{name}_s"] = round(time.perf_counter() - t0, 2)
        rec[f"{name}_cpu_s"] = round(time.process_time() - c0, 2)
        rec[f"{name}_peak_mib"] = round(rss.reset())
        print(f"[stage] {name}: {rec[f'{name}_s']:.1f} s, peak {rec[f'{name}_peak_mib']:,} MiB", file=sys.stderr, flush=True)

    clock = lambda: (time.perf_counter(), time.process_time())  # noqa: E731
    t, c = clock()
    ds = load_table(path)
    rec["rows"], rec["users"], rec["items"] = ds.n_interactions, ds.n_users, ds.n_items
    stage("load", t, c)
    t, c = clock()
    core, _ = filter_kcore(ds, 5, 5)
    del ds
    rec["core_rows"] = core.n_interactions
    stage("filter", t, c)
    t, c = clock()
    sp = split(core, "rs", (0.8, 0.1, 0.1), seed=0)
    del core
    rec["train_rows"], rec["test_users"] = sp.train.n_interactions, int(len(set(sp.test.user_idx.tolist())))
    stage("split", t, c)
    ev = Evaluator(metrics=("ndcg", "recall"), ks=(10,))
    options = RunOptions(cpu_threads=threads)
    t, c = clock()
    pop = fit_model(make_model("pop", {}), sp.train, None, 0, options)
    res = ev.evaluate(pop, sp.test, exclude=(sp.train, sp.valid))
    rec["pop_ndcg@10"] = round(res.metrics["ndcg@10"], 4)
    del pop
    stage("pop", t, c)
    t, c = clock()
    bpr = make_model("bpr", {"epochs": 1, **bpr_params})
    fit_model(bpr, sp.train, None, 0, options)
    rec["bpr_samples_per_s"] = round(bpr.history_.records[-1]["samples_per_s"])
    stage("bpr_epoch", t, c)
    rec["bpr_samples_per_cpu_s"] = round(sp.train.n_interactions / max(rec["bpr_epoch_cpu_s"], 1e-9))
    t, c = clock()
    res = ev.evaluate(bpr, sp.test, exclude=(sp.train, sp.valid))
    rec["bpr_ndcg@10"], rec["bpr_recall@10"] = round(res.metrics["ndcg@10"], 4), round(res.metrics["recall@10"], 4)
    stage("bpr_eval", t, c)
    rec["total_s"] = round(sum(rec[f"{s}_s"] for s in STAGES), 1)
    rss.close()
    rec["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return rec


def format_table(rows: list[dict]) -> str:
    head = ["size", "rows", "users x items"] + [f"{s} s" for s in STAGES] + ["total s", "CPU s", "peak RSS MiB", "BPR samples/s", "Pop NDCG@10", "BPR NDCG@10"]
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append([r["size"], "error: " + r["error"]] + [""] * (len(head) - 2))
            continue
        lines.append(
            [r["size"], f"{r['rows']:,}", f"{r['users']:,} x {r['items']:,}"]
            + [f"{r[f'{s}_s']:.1f} ({r[f'{s}_peak_mib']:,} MiB)" for s in STAGES]
            + [f"{r['total_s']:.1f}", f"{sum(r[f'{s}_cpu_s'] for s in STAGES):.1f}", f"{r['peak_rss_mib']:,}", f"{r['bpr_samples_per_s']:,}", f"{r['pop_ndcg@10']:.4f}", f"{r['bpr_ndcg@10']:.4f}"]
        )
    return "\n".join("| " + " | ".join(x) + " |" + ("\n|" + "---|" * len(head) if i == 0 else "") for i, x in enumerate(lines))


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if "error" not in r]
    x = [r["rows"] / 1e6 for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for s in STAGES:
        a.plot(x, [r[f"{s}_s"] for r in rows], marker="o", label=s)
    a.plot(x, [r["total_s"] for r in rows], marker="s", color="black", label="total")
    a.axhline(45 * 60, ls="--", color="grey", label="goal 45 min")
    a.set(xscale="log", yscale="log", xlabel="interactions (millions)", ylabel="seconds", title="time per stage")
    a.legend(fontsize=7)
    for s in STAGES:
        b.plot(x, [r[f"{s}_peak_mib"] / 1024 for r in rows], marker="o", label=s)
    b.plot(x, [r["peak_rss_mib"] / 1024 for r in rows], marker="s", color="black", label="process peak")
    b.axhline(8, ls="--", color="grey", label="goal 8 GB")
    b.set(xscale="log", xlabel="interactions (millions)", ylabel="peak RSS (GiB)", title="peak resident memory per stage")
    b.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> int:
    from fusionrec.data.synthetic import SCALES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1m", help=f"comma list of {', '.join(SCALES)}")
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--bpr", default="", help="BPR params as k=v,... (default optimizer=sgd,lr=200)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = one per CPU)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fusionrec-scale")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--plot", type=Path, help="write a PNG of seconds and peak RSS against size")
    ap.add_argument("--merge", default="", help="comma list of --json files: print their table (and --plot), run nothing")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.merge:
        rows = [r for f in a.merge.split(",") if f for r in json.loads(Path(f).read_text())]
        rows.sort(key=lambda r: r.get("rows", 0))
        print(format_table(rows))
        if a.plot:
            plot(rows, a.plot)
            print(f"plot: {a.plot}")
        return 0
    if a.child:
        kind, path, extra = a.child
        res = _generate(int(extra), Path(path)) if kind == "generate" else _pipeline(Path(path), json.loads(extra), a.threads or os.cpu_count() or 1)
        print(json.dumps(res))
        return 0
    sizes = [s.strip() for s in a.size.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SCALES]
    if bad:
        print(f"error: unknown size {bad}; choose from {', '.join(SCALES)}", file=sys.stderr)
        return 2
    a.workdir.mkdir(parents=True, exist_ok=True)
    bpr_params = {**BPR_DEFAULT, **_params(a.bpr)}
    print(f"[setup] load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    rows = []
    for size in sizes:
        n = SCALES[size]
        path = a.workdir / f"inter-{n}.{a.format}"
        if not path.exists():
            print(f"{size}: generated {_child(['generate', str(path), str(n)], a.threads)}", flush=True)
        t0 = time.perf_counter()
        row = {"size": size, "format": a.format, **_child(["run", str(path), json.dumps(bpr_params)], a.threads)}
        row["process_wall_s"] = round(time.perf_counter() - t0, 1)
        row["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(format_table(rows))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    if a.plot:
        plot(rows, a.plot)
        print(f"plot: {a.plot}")
    return 0


def _child(args: list[str], threads: int) -> dict:
    # passive OpenMP wait: on a shared machine the default active wait spins while a peer
    # thread is descheduled (see benchmarks/throughput.py)
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, "--threads", str(threads), "--child", *args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)  # stage lines go to stderr, live
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
