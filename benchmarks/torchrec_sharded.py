"""BPR with TorchRec-sharded embedding tables on 2 gloo processes vs the same model dense in one.

    python benchmarks/torchrec_sharded.py [--shardings table_wise,column_wise] [--epochs 20]

Needs the ``torchrec`` extra (docs/scale.md). ml-100k, RecBole's random 8:1:1 split (seed 2020);
each run is evaluated by full ranking on the test split (train and valid masked): NDCG@10,
Recall@10, seconds (process start-up included for the sharded runs), and where each table's
shards live.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fusionrec.evaluation import Evaluator
from fusionrec.experiment import prepare
from fusionrec.experiment.config import DataConfig
from fusionrec.training.torchrec_sharding import train_dense_bpr, train_sharded_bpr


class _Tables:
    def __init__(self, user: np.ndarray, item: np.ndarray) -> None:
        self.user, self.item = user, item

    def score_indices(self, user_idx, item_idx=None):
        it = self.item if item_idx is None else self.item[item_idx]
        return self.user[user_idx] @ it.T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shardings", default="table_wise,column_wise")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args()
    sp = prepare(DataConfig(name="ml-100k"), 2020).split
    tr = sp.train
    kw = {"dim": args.dim, "epochs": args.epochs, "lr": args.lr, "batch_size": 4096, "seed": 2020}
    ev = Evaluator(metrics=("ndcg", "recall"), ks=(10,))
    runs = [("dense (1 process)", None)] + [(f"{s} (2 gloo processes)", s) for s in args.shardings.split(",")]
    for label, sharding in runs:
        t0 = time.perf_counter()
        if sharding is None:
            user, item = train_dense_bpr(tr.user_idx, tr.item_idx, tr.n_users, tr.n_items, **kw)
            placement = {}
        else:
            user, item, placement = train_sharded_bpr(tr.user_idx, tr.item_idx, tr.n_users, tr.n_items, sharding=sharding, world_size=2, **kw)
        secs = time.perf_counter() - t0
        m = ev.evaluate_split(_Tables(user, item), sp, "test").metrics
        row = {"run": label, "ndcg@10": round(m["ndcg@10"], 4), "recall@10": round(m["recall@10"], 4), "seconds": round(secs, 1), "shard_ranks": placement}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
