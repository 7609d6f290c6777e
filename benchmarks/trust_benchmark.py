"""Beyond-accuracy and fairness metrics, re-ranking frontiers and explanation faithfulness on
MovieLens-100k (RS 8:1:1, seed 2020, full ranking, @10).

    python benchmarks/trust_benchmark.py [--models pop,itemknn,ease,bpr,lightgcn,lm_ease]
        [--frontier-models ease,bpr] [--sasrec-epochs 10] [--out benchmarks/results/trust]

Prints three markdown tables and writes ``frontier_diversity.png``, ``frontier_fairness.png``
and ``trust.json`` into ``--out``:

1. per model: NDCG/Recall and every beyond-accuracy and fairness metric of the Evaluator;
2. the frontiers: MMR (ILD over genres) and calibrated re-ranking (calibration KL) against
   NDCG@10 (accuracy-diversity), FA*IR's tail exposure against NDCG@10 (accuracy-fairness),
   each swept over its weight;
3. faithfulness: removing the top contributor vs a random history item, over 200 users.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

METRICS = [
    "ndcg", "recall", "itemcoverage", "giniindex", "shannonentropy", "tailpercentage",
    "averagepopularity", "ild", "novelty", "serendipity", "calibration", "exposure", "ndcg_gap",
]  # fmt: skip
TABLE = [
    ("ndcg@10", "NDCG"), ("recall@10", "Recall"), ("itemcoverage@10", "Cov"), ("giniindex@10", "Gini"),
    ("shannonentropy@10", "Entropy"), ("tailpercentage@10", "Tail%"), ("averagepopularity@10", "AvgPop"),
    ("ild@10", "ILD"), ("novelty@10", "Novelty"), ("serendipity@10", "Seren"), ("calibration@10", "CalKL"),
    ("exposure@10:tail", "TailExp"), ("ndcg_gap@10:gender", "ΔNDCG sex"), ("ndcg_gap@10:age", "ΔNDCG age"),
    ("ndcg_gap@10:activity", "ΔNDCG act"),
]  # fmt: skip
SWEEPS = {
    "mmr": [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9],
    "calibrated": [0.0, 0.1, 0.3, 0.5, 0.7, 0.9],
    "fair": [0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 0.95],
}


def _fit(name: str, sp: Any, seed: int) -> Any:
    from fusionrec.models.registry import get_model

    return get_model(name)().fit(sp.train, sp.valid, seed=seed)


def _md(rows: list[dict[str, Any]], cols: list[tuple[str, str]], first: str = "model") -> str:
    head = [first, *(h for _, h in cols)]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(cols)) + "|"]
    for r in rows:
        vals = []
        for k, _ in cols:
            v = r.get(k)
            vals.append("—" if v is None else (f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"))
        out.append("| " + " | ".join([str(r[first]), *vals]) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="pop,itemknn,ease,bpr,lightgcn,lm_ease")
    ap.add_argument("--frontier-models", default="ease,bpr")
    ap.add_argument("--sasrec-epochs", type=int, default=10, help="0 skips the SASRec attention row")
    ap.add_argument("--faith-users", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/trust"))
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fusionrec.data import load_dataset
    from fusionrec.data.splits import split
    from fusionrec.evaluation import EvalContext, Evaluator
    from fusionrec.explain import faithfulness
    from fusionrec.rerank import make_reranker

    args.out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("ml-100k")
    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=args.seed)
    ctx = EvalContext.from_dataset(sp.train)
    ev = Evaluator(METRICS, ks=(10,))
    models: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        t0 = time.perf_counter()
        try:
            models[name] = _fit(name, sp, args.seed)
        except Exception as e:  # e.g. lm_ease without its packaged text encoder
            print(f"[skip] {name}: {type(e).__name__}: {e}")
            rows.append({"model": name, "error": f"{type(e).__name__}: {e}"})
            continue
        fit_s = time.perf_counter() - t0
        res = ev.evaluate(models[name], sp.test, exclude=(sp.train, sp.valid), context=ctx)
        rows.append({"model": name, "fit_s": fit_s, **res.metrics})
        print(f"[done] {name}: NDCG@10 {res.metrics['ndcg@10']:.4f} (fit {fit_s:.1f}s)", flush=True)
    print("\n## Beyond-accuracy and fairness @10\n")
    print(_md([r for r in rows if "error" not in r], TABLE))

    frontier: dict[str, dict[str, list[dict[str, float]]]] = {}
    for name in [m.strip() for m in args.frontier_models.split(",") if m.strip() in models]:
        frontier[name] = {}
        for method, weights in SWEEPS.items():
            pts = []
            for w in weights:
                rr = make_reranker(f"{method}:{w}", sp.train, models[name])
                e = Evaluator(["ndcg", "ild", "calibration", "exposure", "itemcoverage"], ks=(10,), reranker=rr)
                m = e.evaluate(models[name], sp.test, exclude=(sp.train, sp.valid), context=ctx).metrics
                pts.append({"weight": w, **m})
            frontier[name][method] = pts
            print(f"[frontier] {name} {method}: " + ", ".join(f"{p['weight']:g}->{p['ndcg@10']:.4f}" for p in pts), flush=True)
    if frontier:
        print("\n## Frontiers (NDCG@10 against the re-ranker's target)\n")
        fr_rows = []
        for name, by in frontier.items():
            for method, pts in by.items():
                for p in pts:
                    fr_rows.append({"run": f"{name} {method}:{p['weight']:g}", **p})
        print(_md(fr_rows, [("ndcg@10", "NDCG"), ("ild@10", "ILD"), ("calibration@10", "CalKL"),
                            ("exposure@10:tail", "TailExp"), ("itemcoverage@10", "Cov")], first="run"))
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for name, by in frontier.items():
            axes[0].plot([p["ild@10"] for p in by["mmr"]], [p["ndcg@10"] for p in by["mmr"]], "o-", label=f"{name} + MMR")
            axes[1].plot([p["calibration@10"] for p in by["calibrated"]], [p["ndcg@10"] for p in by["calibrated"]], "s-", label=f"{name} + calibrated")
        axes[0].set(xlabel="intra-list diversity @10 (genres)", ylabel="NDCG@10", title="accuracy vs diversity (MMR)")
        axes[1].set(xlabel="calibration KL @10 (lower = calibrated)", ylabel="NDCG@10", title="accuracy vs calibration (Steck)")
        axes[1].invert_xaxis()
        for a in axes:
            a.grid(alpha=0.3)
            a.legend()
        fig.tight_layout()
        fig.savefig(args.out / "frontier_diversity.png", dpi=120)
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        for name, by in frontier.items():
            ax.plot([p["exposure@10:tail"] for p in by["fair"]], [p["ndcg@10"] for p in by["fair"]], "o-", label=f"{name} + FA*IR")
        ax.set(xlabel="long-tail share of exposure @10", ylabel="NDCG@10", title="accuracy vs fair exposure (FA*IR)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / "frontier_fairness.png", dpi=120)

    print("\n## Explanation faithfulness (top contributor vs random history item removed)\n")
    X = sp.train.matrix("csr")
    faith: list[dict[str, Any]] = []
    for name in ("ease", "itemknn", "bpr", "lightgcn"):
        if name not in models:
            continue
        for ex in ("leave_one_out", "item_vectors"):
            if ex == "item_vectors" and models[name].item_vectors() is None:
                continue
            r = faithfulness(models[name], X, ex, n_users=args.faith_users, seed=args.seed)
            faith.append({"run": f"{name} / {ex} ({r.scorer})", **r.as_dict()})
    if args.sasrec_epochs > 0:
        from fusionrec.models.registry import get_model

        t0 = time.perf_counter()
        sas = get_model("sasrec")(epochs=args.sasrec_epochs).fit(sp.train, sp.valid, seed=args.seed)
        print(f"[done] sasrec ({args.sasrec_epochs} epochs, {time.perf_counter() - t0:.0f}s)", flush=True)
        hist = [row[row > 0] - 1 for row in np.asarray(sas.hist_)]
        for ex in ("attention", "leave_one_out"):
            r = faithfulness(sas, X, ex, n_users=args.faith_users, seed=args.seed, histories=hist)
            faith.append({"run": f"sasrec / {ex} ({r.scorer})", **r.as_dict()})
    print(_md(faith, [("mean_drop_top", "drop (top)"), ("mean_drop_random", "drop (random)"),
                      ("share_top_beats_random", "top > random")], first="run"))
    (args.out / "trust.json").write_text(json.dumps({"models": rows, "frontier": frontier, "faithfulness": faith}, indent=2, default=float))
    print(f"\nwrote {args.out}/trust.json, frontier_diversity.png, frontier_fairness.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
