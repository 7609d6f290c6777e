"""LM-enhanced models on MovieLens-100k: warm (RS 8:1:1, seed 2020) and cold-item protocols,
items encoded per second, and fine-tuning seconds per epoch (frozen / top-N / LoRA).

    python benchmarks/lm_benchmark.py [--quick] [--epochs 30] [--skip-finetune]

Prints one table per protocol (NDCG@10, Recall@10, fit seconds) and the throughput figures.
Full ranking, train items masked (and valid items at test). Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fusionrec.data import load_dataset, split  # noqa: E402
from fusionrec.encoders import encode_items, encode_texts, load_text_encoder, render_item_texts  # noqa: E402
from fusionrec.evaluation import Evaluator  # noqa: E402
from fusionrec.models import get_model  # noqa: E402


def _run(name: str, params: dict, sp, seed: int = 2020) -> dict:
    t0 = time.perf_counter()
    model = get_model(name)(**params)
    model.fit(sp.train, sp.valid, seed=seed)
    fit_s = time.perf_counter() - t0
    res = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate_split(model, sp)
    hist = getattr(model, "history_", None)
    best = getattr(hist, "best_epoch", None)
    return {
        "ndcg@10": res["ndcg@10"],
        "recall@10": res["recall@10"],
        "fit_s": fit_s,
        "best_epoch": best,
    }


def _table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n## {title}\n")
    print("| model | NDCG@10 | Recall@10 | fit s | best epoch |\n|---|---|---|---|---|")
    for k, r in rows.items():
        print(
            f"| {k} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['fit_s']:.1f} | {r['best_epoch']} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--skip-finetune", action="store_true")
    ap.add_argument("--only", default="", help="comma list of sections: encode,warm,cold,finetune")
    args = ap.parse_args()
    sections = set(args.only.split(",")) if args.only else {"encode", "warm", "cold", "finetune"}
    torch.set_num_threads(2)
    print(f"torch threads: {torch.get_num_threads()}  load average: {os.getloadavg()}")
    ds = load_dataset("ml-100k")
    texts = render_item_texts(ds)
    enc = load_text_encoder()
    if "encode" in sections:
        sample = texts[:256]
        t0 = time.perf_counter()
        encode_texts(sample, enc, use_cache=False)
        dt = time.perf_counter() - t0
        print(
            f"encode: {len(sample)} item texts in {dt:.1f}s = {len(sample) / dt:.1f} items/s (no cache, batch 64)"
        )
    t0 = time.perf_counter()
    emb = encode_items(ds, enc)
    print(
        f"encode_items(ml-100k) {emb.shape} in {time.perf_counter() - t0:.1f}s (cache after first run)"
    )
    ds = ds.with_item_embedding("text", emb)
    common = {"epochs": args.epochs, "patience": args.patience, "device": "cpu"}
    lm = {**common, "lr": 2e-3, "batch_size": 2048}
    models = {
        "bpr (id-only, models/bpr.py)": ("bpr", {**common}),
        "lm_mf use_text=False (id-only)": ("lm_mf", {**lm, "use_text": False}),
        "lm_mf fusion=gate": ("lm_mf", {**lm, "fusion": "gate"}),
        "lm_mf fusion=add": ("lm_mf", {**lm, "fusion": "add"}),
        "text_seq": ("text_seq", {**common, "lr": 1e-3}),
    }
    if "warm" in sections:
        sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=2020)
        rows = {"ease": _run("ease", {}, sp), "pop": _run("pop", {}, sp)}
        for label, (name, params) in models.items():
            rows[label] = _run(name, params, sp)
            print(label, rows[label], flush=True)
        _table("warm: RS 8:1:1 seed 2020, full ranking", rows)
    if "cold" in sections:
        sp = split(ds, "cold-item", (0.8, 0.1, 0.1), seed=2020)
        rows = {"pop": _run("pop", {}, sp)}
        for label, (name, params) in models.items():
            if label.startswith("lm_mf fusion=add"):
                continue
            rows[label] = _run(name, params, sp)
            print(label, rows[label], flush=True)
        _table("cold-item: 10% of items held out whole for test, full ranking", rows)
        pop = rows["pop"]["ndcg@10"]
        for k, r in rows.items():
            print(f"  {k}: {r['ndcg@10'] / max(pop, 1e-12):.1f}x Pop NDCG@10")
    if "finetune" in sections and not args.skip_finetune:
        sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=2020)
        n = 8192
        sub = sp.train.with_interactions(np.arange(n), name="ml-100k:train-8k")
        print(
            f"\n## fine-tuning seconds per epoch (lm_mf, {n} training pairs, batch 1024, 64 live items/step)\n"
        )
        for mode in ("frozen", "top_n", "lora"):
            m = get_model("lm_mf")(
                epochs=1, batch_size=1024, device="cpu", encoder_finetune=mode, live_items=64
            )
            t0 = time.perf_counter()
            m.fit(sub, seed=0)
            epoch_s = m.history_.records[-1]["seconds"]
            print(
                f"| {mode} | {epoch_s:.1f} s/epoch (fit incl. encoder load + text refresh {time.perf_counter() - t0:.1f}s) |",
                flush=True,
            )
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
