"""Transfer of a text-based model across two item "domains" of MovieLens-100k.

    python benchmarks/joint_transfer.py [--seed 2020] [--year 1995] [--epochs 30] [--patience 3]

Items released before ``--year`` are domain A, the others domain B. On the RS 8:1:1 split:

- ``zero-shot``: ``joint`` with sources=[text] fitted on A's training interactions only; B's
  items are cold to it (no ID vector) and are ranked from their text alone;
- ``A+B``: the same model fitted on A's and B's training interactions (the model after seeing
  the target domain: the upper bound a fine-tuning stage aims at);
- ``B only``: fitted on B's training interactions only (in-domain, no transfer);
- ``pop(B)``: B's items by training popularity (the floor).

Every row is NDCG@10 / Recall@10 on B's test interactions, ranking B's items only (A's items and
the user's training/valid B items removed). The split's valid part restricted to the fitted
domain(s) drives early stopping.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _rank_metrics(scores: np.ndarray, test: dict[int, set[int]], k: int = 10) -> tuple[float, float]:
    nd, rc = [], []
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for r, pos in enumerate(test.values()):
        top = np.argsort(-scores[r], kind="stable")[:k]
        hits = np.array([i in pos for i in top], dtype=float)
        ideal = disc[: min(len(pos), k)].sum()
        nd.append(float((hits * disc).sum() / ideal))
        rc.append(float(hits.sum() / len(pos)))
    return float(np.mean(nd)), float(np.mean(rc))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--year", type=int, default=1995)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--output", default="runs/joint_transfer")
    a = p.parse_args(argv)

    import torch

    from fusionrec.data import load_dataset
    from fusionrec.data.splits import split
    from fusionrec.encoders import encode_items
    from fusionrec.models import get_model

    torch.set_num_threads(1)
    ds = load_dataset("ml-100k")
    ds = ds.with_item_embedding("text", encode_items(ds))
    import pandas as pd

    year = pd.to_numeric(ds.item_features["release_year"], errors="coerce").to_numpy(dtype=float)
    in_b = np.nan_to_num(year, nan=0) >= a.year
    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=a.seed)

    def part(d, dom):  # interactions of d on the items of domain mask dom
        return d.with_interactions(dom[d.item_idx])

    b_test = part(sp.test, in_b)
    test: dict[int, set[int]] = {}
    for u, i in zip(b_test.user_idx.tolist(), b_test.item_idx.tolist(), strict=True):
        test.setdefault(u, set()).add(i)
    users = np.array(sorted(test))
    seen = sp.train.matrix("csr") + sp.valid.matrix("csr")
    b_items = np.flatnonzero(in_b)

    def evaluate(scores_full: np.ndarray) -> tuple[float, float]:
        s = scores_full.astype(np.float64).copy()
        s[:, ~in_b] = -np.inf
        rows = seen[users]
        for r in range(len(users)):
            s[r, rows[r].indices] = -np.inf
        return _rank_metrics(s, test)

    out: dict[str, dict[str, float]] = {}
    params = {"sources": ["text"], "epochs": a.epochs, "patience": a.patience}
    everything = np.ones(ds.n_items, dtype=bool)
    for label, dom in (("zero-shot (fit on A)", ~in_b), ("A+B", everything), ("B only", in_b)):
        t0 = time.perf_counter()
        m = get_model("joint")(**params).fit(part(sp.train, dom), part(sp.valid, dom), seed=a.seed)
        nd, rc = evaluate(m.score_indices(users))
        out[label] = {"ndcg@10": nd, "recall@10": rc, "fit_s": time.perf_counter() - t0}
        print(f"{label}: NDCG@10 {nd:.4f} Recall@10 {rc:.4f} ({out[label]['fit_s']:.0f}s)", flush=True)
    pop = np.bincount(part(sp.train, in_b).item_idx, minlength=ds.n_items).astype(float)
    nd, rc = evaluate(np.tile(pop, (len(users), 1)))
    out["pop(B)"] = {"ndcg@10": nd, "recall@10": rc, "fit_s": 0.0}
    print(f"pop(B): NDCG@10 {nd:.4f} Recall@10 {rc:.4f}")
    print(f"domain A: {int((~in_b).sum())} items, domain B: {len(b_items)} items (release year >= {a.year}); "
          f"{len(users)} test users with B test items")
    dest = Path(a.output)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "joint_transfer.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
