"""Full-ranking evaluation at scale: peak memory and seconds of the Evaluator on a synthetic
31k users x 24k items catalogue (the ML-25M-sized case of issue 13), for the block settings given.

    python benchmarks/eval_scale.py [--users 31000] [--items 24000] [--block-mib 0,256,64,16]
        [--before PATH_TO_OLD_evaluator.py] [--protocol full]

Each setting runs in a fresh process: the data and a matrix-factorisation scorer (dim 64,
float32 numpy) are built first, then a thread samples the resident set every 2 ms while
``Evaluator.evaluate`` runs; the figure is the peak above the resident set at the start of the
evaluation (what evaluation adds), beside the users x items matrix it never builds.
``--before FILE`` also measures an older ``evaluator.py`` (e.g. ``git show REV:src/fusionrec/
evaluation/evaluator.py > old.py``) under the same conditions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class _Scorer:
    def __init__(self, users, items) -> None:
        self.u, self.i = users, items

    def score_indices(self, user_idx, item_idx=None):
        it = self.i if item_idx is None else self.i[item_idx]
        return self.u[user_idx] @ it.T


def _child(args: argparse.Namespace) -> dict:
    import numpy as np
    import pandas as pd

    from fusionrec.data import Dataset

    rng = np.random.default_rng(0)
    n_u, n_i = args.users, args.items
    per_user = 30
    pop = 1.0 / np.arange(1, n_i + 1) ** 0.8
    pop /= pop.sum()
    u = np.repeat(np.arange(n_u), per_user)
    i = rng.choice(n_i, size=len(u), p=pop)
    frame = pd.DataFrame({"user_id": u, "item_id": i}).drop_duplicates()
    frame["user_id"], frame["item_id"] = "u" + frame.user_id.astype(str), "i" + frame.item_id.astype(str)
    ds = Dataset.from_frames(frame, name="synthetic")
    is_test = rng.random(ds.n_interactions) < 0.2
    train, test = ds.with_interactions(np.flatnonzero(~is_test)), ds.with_interactions(np.flatnonzero(is_test))
    model = _Scorer(rng.standard_normal((ds.n_users, 64), dtype=np.float32), rng.standard_normal((ds.n_items, 64), dtype=np.float32))
    if args.before:
        spec = importlib.util.spec_from_file_location("evaluator_before", args.before)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["evaluator_before"] = mod  # dataclasses look their module up
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        ev = mod.Evaluator(metrics=("ndcg", "recall"), ks=(10,))
        label = f"before ({Path(args.before).name}), batch 1024"
    else:
        from fusionrec.evaluation import Evaluator

        kw = {} if args.block_mib == 0 else {"max_batch_mib": args.block_mib}
        ev = Evaluator(metrics=("ndcg", "recall"), ks=(10,), protocol=args.protocol, **kw)
        label = f"now, max_batch_mib={ev.max_batch_mib:g} ({ev.rows_per_block(ds.n_items)} users/block)"
    base = _rss_mib()
    peak = [base]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.002)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t0 = time.perf_counter()
    res = ev.evaluate(model, test, exclude=(train,))
    secs = time.perf_counter() - t0
    done.set()
    t.join()
    return {
        "setting": label,
        "users": ds.n_users,
        "items": ds.n_items,
        "eval_users": res.n_users,
        "peak_added_mib": round(peak[0] - base, 1),
        "full_matrix_mib": round(ds.n_users * ds.n_items * 4 / 2**20, 1),
        "seconds": round(secs, 2),
        "ndcg@10": round(res.metrics["ndcg@10"], 5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=31000)
    ap.add_argument("--items", type=int, default=24000)
    ap.add_argument("--block-mib", default="0,64,16", help="max_batch_mib values (0 = the default)")
    ap.add_argument("--before", default=None)
    ap.add_argument("--protocol", default="full")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.block_mib = args.one
        print(json.dumps(_child(args)))
        return
    runs = [["--before", args.before, "--one", "0"]] if args.before else []
    runs += [["--one", b] for b in args.block_mib.split(",")]
    for extra in runs:
        cmd = [sys.executable, __file__, "--child", "--users", str(args.users), "--items", str(args.items), "--protocol", args.protocol, *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{' '.join(extra)} failed:\n{proc.stderr[-2000:]}")
        print(proc.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
