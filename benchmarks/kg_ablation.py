"""KG / multimodal ablation on MovieLens-100k, side by side with RecBole 1.2.1's CKE (and KGAT
when its dgl dependency can be imported) on the same protocol, in the same run.

    python benchmarks/kg_ablation.py [--variants id,text,kg,text+kg,kgat] [--epochs N] [--seeds 2020,1,2]
        [--recbole-epochs 40] [--recbole-models CKE,KGAT] [--recbole-venv .bench/recbole-venv]
        [--output DIR]

Protocol: RS 8:1:1 (per user, random order), split seed 2020 (or the mean over --seeds; RecBole: seed 2020), full ranking, top-10, train items
masked (and valid items at test); early stopping on validation. Our variants come from
``fusionrec.experiment.ablation.run_ablation`` with each model's own defaults (the BPR recipe for
mm_mf/cke: up to 200 epochs, patience 10) unless ``--epochs``/``--patience``/``--lr`` are given; RecBole runs in its own virtualenv (numpy<2) through
``benchmarks/_run_recbole.py``'s config, with the epoch budget given here, in a child process
that runs while our variants train. RecBole's KGAT needs dgl (``KGAT.__init__`` builds a dgl
graph): it runs on dgl 1.1.3 (dgl 2.x ships native libraries for torch 2.0-2.3 only) with two
renamed dgl calls mapped back (``_run_recbole._dgl_compat``); without dgl the row is reported
as not run with the import error. Prints one table; writes
ablation.md / ablation.json / ablation.png to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARKER = "BENCH_RESULT "


# ----------------------------------------------------------------------------- RecBole child
def _recbole_child(model: str, epochs: int, workdir: str, time_limit: float | None = None) -> int:
    """Runs inside the RecBole venv: RecBole's quick start with the benchmark's epoch budget."""
    sys.path.insert(0, str(HERE))
    import _run_recbole as rr

    base = rr.config_dict

    def cfg(m: str, protocol: str, wd: str, ep: int | None = None) -> dict:
        c = base(m, protocol, wd, ep)
        c["valid_metric"] = "NDCG@10"
        return c

    rr.config_dict = cfg
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)
    try:
        out = rr.run(model, "rs", workdir, epochs, time_limit)
    except Exception as e:  # noqa: BLE001
        print(
            MARKER
            + json.dumps({"model": model, "status": "error", "reason": f"{type(e).__name__}: {e}"}),
            flush=True,
        )
        return 1
    print(MARKER + json.dumps(out), flush=True)
    return 0


def _start_recbole(
    py: Path, model: str, epochs: int, log_dir: Path, time_limit: float | None = None
) -> tuple[subprocess.Popen, Path]:
    from compare_recbole import recbole_env  # benchmarks/ is this script's folder

    env = recbole_env()
    env["OMP_NUM_THREADS"] = "1"
    log = log_dir / f"recbole-{model}.log"
    cmd = [
        str(py),
        str(Path(__file__).resolve()),
        "--recbole-child",
        model,
        "--recbole-epochs",
        str(epochs),
        "--workdir",
        str(ROOT / ".bench" / "recbole_work_kg"),
    ]
    if time_limit:
        cmd += ["--recbole-time-limit", str(time_limit)]
    f = log.open("w")
    return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT), log


def _collect(proc: subprocess.Popen, log: Path, model: str, t0: float, timeout: float) -> dict:
    try:
        proc.wait(timeout=max(timeout - (time.perf_counter() - t0), 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"model": model, "status": "error", "reason": f"timed out after {timeout:.0f}s"}
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    return {"model": model, "status": "error", "reason": f"no result (see {log})"}


# ----------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="id,text,kg,text+kg,kgat")
    p.add_argument("--epochs", type=int, default=None, help="max epochs of our variants")
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="learning rate of our variants")
    p.add_argument(
        "--seeds",
        default="2020",
        help="our variants' split seeds, e.g. 2020,1,2 (mean and each seed; RecBole: seed 2020)",
    )
    p.add_argument("--recbole-epochs", type=int, default=40, help="RecBole's epoch budget")
    p.add_argument(
        "--recbole-time-limit",
        type=float,
        default=None,
        help="seconds of RecBole fitting after which no new epoch starts (best checkpoint used)",
    )
    p.add_argument("--recbole-models", default="CKE,KGAT")
    p.add_argument("--recbole-venv", default=str(ROOT / ".bench" / "recbole-venv"))
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", default=str(ROOT / "runs" / "kg_ablation"))
    p.add_argument("--recbole-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.recbole_child:
        return _recbole_child(a.recbole_child, a.recbole_epochs, a.workdir, a.recbole_time_limit)

    import torch

    from fusionrec.data import load_dataset
    from fusionrec.experiment.ablation import run_ablation, write_ablation_report

    torch.set_num_threads(a.threads)
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    py = Path(a.recbole_venv) / "bin" / "python"
    procs = []
    models = [m.strip() for m in a.recbole_models.split(",") if m.strip()]
    if py.exists():
        for m in models:  # one at a time would double the wall time; the machine has 2 cores
            procs.append((m, *_start_recbole(py, m, a.recbole_epochs, out, a.recbole_time_limit)))
    ds = load_dataset("ml-100k")
    variants = a.variants.split(",")
    params = {v: {} if a.lr is None else {"lr": a.lr} for v in variants}
    seeds = [int(x) for x in a.seeds.split(",") if x.strip()]
    report = run_ablation(
        ds, variants, epochs=a.epochs, patience=a.patience, seed=seeds, params=params
    )
    extra = []
    for m, proc, log in procs:
        r = _collect(proc, log, m, t0, a.timeout)
        if r.get("status") != "ok":
            report["notes"].append(f"RecBole {m} not run: {r.get('reason')}")
            continue
        curve = [c[0] for c in r.get("valid_curve") or []]
        best = max(range(len(curve)), key=curve.__getitem__) + 1 if curve else None
        report["notes"].append(
            f"RecBole {m}: {r.get('epochs_run')} epochs"
            + (" (stopped by the time limit)" if r.get("stopped_by_time_limit") else "")
            + f", fit {r['fit_s']:.0f} s wall / {r.get('fit_cpu_s') or 0:.0f} s CPU"
            + (
                f"; valid {r.get('valid_metric')} best {max(curve):.4f} at epoch {best}, last {curve[-1]:.4f}"
                if curve
                else ""
            )
        )
        extra.append(
            {
                "variant": f"RecBole {m}",
                "model": f"recbole-{r.get('recbole_version', '1.2.1')}",
                "ndcg@10": r["ndcg@10"],
                "recall@10": r["recall@10"],
                "sparse_ndcg@10": float("nan"),
                "sparse_recall@10": float("nan"),
                "sparse_users": 0,
                "fit_seconds": r["fit_s"],
                "epochs_run": r.get("epochs_run"),
                "stopped_by_time_limit": r.get("stopped_by_time_limit", False),
                "per_seed": {"2020": {"ndcg@10": r["ndcg@10"], "sparse_ndcg@10": float("nan")}},
            }
        )
    if not py.exists():
        report["notes"].append(f"RecBole venv {py.parent.parent} missing: RecBole models not run")
    report["notes"].append(
        "RecBole rows: its own RS 8:1:1 split of the same data (seed 2020), valid_metric NDCG@10; the <20 slice is not available from RecBole's output"
    )
    paths = write_ablation_report(report, out, extra)
    print((out / "ablation.md").read_text())
    print(f"total {time.perf_counter() - t0:.0f}s; wrote {', '.join(map(str, paths))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
