"""Transfer of a text-based model across two item "domains" of MovieLens-100k.

    python benchmarks/joint_transfer.py [--seed 2020] [--year 1995] [--budgets 3,10]
        [--source-epochs 200] [--patience 10] [--params JSON] [--output DIR]

Items released before ``--year`` are domain A, the others domain B (the same users rate both).
On the RS 8:1:1 split of all interactions:

- ``source``: ``joint`` (sources=[text] unless ``--params`` says otherwise) fitted on A's
  training interactions (A's valid part for early stopping), saved to ``DIR/source``;
- ``zero-shot``: that model on B as it is: B's items are cold to it (no ID vector) and are
  ranked from their text alone;
- ``scratch@E``: the same model fitted on B's training interactions only, for at most E epochs
  (the best epoch on B's valid part kept);
- ``fine-tuned@E``: the same fit warm-started from the source (``fit(..., init_from=DIR/source)``:
  user vectors, the text projection and every other weight copied, ids matched), for at most
  the same E epochs;
- ``pop(B)``: B's items by training popularity; ``random``: uniform random scores (mean of 5
  draws), the floor zero-shot must clear.

Every row is NDCG@10 / Recall@10 on B's test interactions, ranking B's items only (A's items and
the user's training/valid items removed). Prints one markdown table; writes
``joint_transfer.json`` to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _joint_data import add_common_args, ml100k_with_text, rs_split

DEFAULT_PARAMS: dict[str, Any] = {"sources": ["text"], "loss_weights": {"text": 1.0}}


def rank_metrics(scores: np.ndarray, test: dict[int, set[int]], k: int = 10) -> tuple[float, float]:
    """Mean NDCG@k and Recall@k of each row of ``scores`` against the row's user's test items
    (rows in the order of ``test``; excluded items already at -inf)."""
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
    p.add_argument("--budgets", default="3,10", help="epoch budgets of the B fits (comma list)")
    p.add_argument("--source-epochs", type=int, default=200)
    add_common_args(p, "runs/joint_transfer")
    a = p.parse_args(argv)

    import pandas as pd

    from fusionrec.models import get_model

    ds = ml100k_with_text(a.threads)
    year = pd.to_numeric(ds.item_features["release_year"], errors="coerce").to_numpy(dtype=float)
    in_b = np.nan_to_num(year, nan=0) >= a.year
    sp = rs_split(ds, a.seed)
    params = {**DEFAULT_PARAMS, **json.loads(a.params)}
    dest = Path(a.output)
    dest.mkdir(parents=True, exist_ok=True)

    def part(d, dom):  # interactions of d on the items of domain mask dom
        return d.with_interactions(dom[d.item_idx])

    b_test = part(sp.test, in_b)
    test: dict[int, set[int]] = {}
    for u, i in zip(b_test.user_idx.tolist(), b_test.item_idx.tolist(), strict=True):
        test.setdefault(u, set()).add(i)
    users = np.array(sorted(test))
    seen = (sp.train.matrix("csr") + sp.valid.matrix("csr")).tocsr()

    def evaluate(scores_full: np.ndarray) -> tuple[float, float]:
        s = scores_full.astype(np.float64).copy()
        s[:, ~in_b] = -np.inf
        rows = seen[users]
        for r in range(len(users)):
            s[r, rows[r].indices] = -np.inf
        return rank_metrics(s, test)

    out: dict[str, dict[str, float]] = {}

    def record(label: str, scores: np.ndarray, fit_s: float, epochs: int = 0) -> None:
        nd, rc = evaluate(scores)
        out[label] = {"ndcg@10": nd, "recall@10": rc, "fit_s": fit_s, "epochs": epochs}
        print(f"{label}: NDCG@10 {nd:.4f} Recall@10 {rc:.4f} ({fit_s:.0f}s, {epochs} ep)", flush=True)

    def fit(dom, epochs: int, patience: int, init_from: Path | None = None):
        t0 = time.perf_counter()
        m = get_model("joint")(**{**params, "epochs": epochs, "patience": patience})
        m.fit(part(sp.train, dom), part(sp.valid, dom), seed=a.seed, init_from=init_from)
        return m, time.perf_counter() - t0

    src, fit_s = fit(~in_b, a.source_epochs, a.patience)
    src.save(dest / "source")
    record("zero-shot (source fitted on A)", src.score_indices(users), fit_s, len(src.history_.records))
    for e in (int(x) for x in a.budgets.split(",") if x.strip()):
        m, s = fit(in_b, e, e)
        record(f"scratch on B @{e} ep", m.score_indices(users), s, len(m.history_.records))
        m, s = fit(in_b, e, e, init_from=dest / "source")
        record(f"fine-tuned from A @{e} ep", m.score_indices(users), s, len(m.history_.records))
    pop = np.bincount(part(sp.train, in_b).item_idx, minlength=ds.n_items).astype(float)
    record("pop(B)", np.tile(pop, (len(users), 1)), 0.0)
    rng = np.random.default_rng(a.seed)
    draws = [evaluate(rng.random((len(users), ds.n_items))) for _ in range(5)]
    nd, rc = (float(np.mean(x)) for x in zip(*draws, strict=True))
    out["random"] = {"ndcg@10": nd, "recall@10": rc, "fit_s": 0.0, "epochs": 0}
    print(f"random: NDCG@10 {nd:.4f} Recall@10 {rc:.4f}")
    print(
        f"domain A: {int((~in_b).sum())} items, domain B: {int(in_b.sum())} items (release year >= "
        f"{a.year}); {len(users)} test users with B test items; params {json.dumps(params)}"
    )
    print("| row | NDCG@10 | Recall@10 | epochs | fit s |\n|---|---:|---:|---:|---:|")
    for label, r in out.items():
        print(f"| {label} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['epochs']} | {r['fit_s']:.0f} |")
    (dest / "joint_transfer.json").write_text(json.dumps({"params": params, "rows": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
