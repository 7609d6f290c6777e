"""Data-parallel training: ``fusionrec train --nproc N`` for N = 1, 2, ... on the same config.

    python benchmarks/distributed.py [--config configs/bpr.yaml] [--nproc 1,2]
        [--set train.epochs=30] [--json OUT]

Every N trains at the same global batch (each rank takes 1/N of each batch), so the metrics
should agree within float noise; the table gives test NDCG@10/Recall@10, the epochs run, the
fit seconds (``fit_seconds`` of metrics.json) and the wall seconds of the whole command
(process start-up and rendezvous included). On a CPU machine the ranks share its cores: N > 1
pays off only with cores (or GPUs) to spare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/bpr.yaml")
    ap.add_argument("--nproc", default="1,2")
    ap.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.nproc.split(",")):
            run_dir = Path(tmp) / f"nproc{n}"
            cmd = [sys.executable, "-m", "fusionrec.cli.main", "train", "-c", args.config, "--run-dir", str(run_dir), "--nproc", str(n)]
            for s in args.set:
                cmd += ["--set", s]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            wall = time.perf_counter() - t0
            if proc.returncode:
                sys.exit(f"nproc {n} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            res = json.loads((run_dir / "metrics.json").read_text())
            m = res["metrics"]
            row = {
                "nproc": n,
                "ndcg@10": round(m["ndcg@10"], 4),
                "recall@10": round(m["recall@10"], 4),
                "epochs_run": res.get("epochs_run"),
                "fit_s": round(res["fit_seconds"], 1),
                "wall_s": round(wall, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
