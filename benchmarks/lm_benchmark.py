"""LM-enhanced models on MovieLens-100k against their ID-only versions.

    python benchmarks/lm_benchmark.py                       # everything, seed 2020
    python benchmarks/lm_benchmark.py --only warm --seeds 2020,1,2
    python benchmarks/lm_benchmark.py --only encode,finetune
    python benchmarks/lm_benchmark.py --only warm --pairs SASRec --seeds 2020,1,2 --seq-epochs 30

Sections (``--only``, comma list; default all):

- ``warm``: RS 8:1:1 per user, full ranking, train (and valid at test) items masked. Pairs of
  ID-only and LM-fused models: ease / lm_ease, bpr / lm_mf, lightgcn / lm_lightgcn. EASE and
  lm_ease are also tuned on the VALIDATION split (λ for EASE; λ and the text weight for
  lm_ease): the pick is made on valid NDCG@10 and only then evaluated on test. The sequential
  pair sasrec / lm_sasrec (``--pairs SASRec``) runs on leave-one-out (``loo``: each user's last
  item is test, the one before valid; full ranking), the protocol SASRec is measured on.
- ``cold``: items held out whole (10 % valid, 10 % test items never seen in training); Pop,
  BPR, lm_ease, lm_mf, lm_lightgcn, text_seq; NDCG@10, Recall@10 and the multiple of Pop.
- ``encode``: item texts encoded per second on ``--threads`` torch threads (default 2), without
  the cache and from a warm cache.
- ``finetune``: lm_mf seconds per epoch on an 8k-interaction sample with the encoder frozen, its
  top layer unfrozen, and LoRA adapters.

Prints markdown tables and the load average (timings on a shared machine are load-dependent).
Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fusionrec.data import load_dataset, split  # noqa: E402
from fusionrec.encoders import (  # noqa: E402
    EncodeStats,
    encode_items,
    encode_texts,
    load_text_encoder,
    render_item_texts,
)
from fusionrec.evaluation import Evaluator  # noqa: E402
from fusionrec.experiment import RunOptions, prepare, run  # noqa: E402
from fusionrec.experiment.config import DataConfig, EvalConfig, ExperimentConfig, ModelSpec  # noqa: E402
from fusionrec.models import get_model  # noqa: E402

EV = Evaluator(metrics=("ndcg", "recall"), ks=(10,))
EVAL = EvalConfig(metrics=["ndcg", "recall"], ks=[10])

# ID-only model and its LM-fused version, with the settings used for both (training settings of
# the fused model equal the ID-only model's defaults, so the text is the only difference)
PAIRS: dict[str, tuple[tuple[str, dict], tuple[str, dict]]] = {
    "EASE": (("ease", {}), ("lm_ease", {})),
    "BPR-MF": (("bpr", {}), ("lm_mf", {})),
    "LightGCN": (("lightgcn", {}), ("lm_lightgcn", {})),
    "SASRec": (("sasrec", {}), ("lm_sasrec", {})),
}
# split protocol of a pair (default: RS 8:1:1); sequential models are measured leave-one-out
PAIR_PROTOCOL: dict[str, str] = {"SASRec": "loo"}
COLD_MODELS: dict[str, tuple[str, dict]] = {
    "pop": ("pop", {}),
    "bpr (ID only)": ("bpr", {}),
    "lm_ease": ("lm_ease", {}),
    "lm_mf": ("lm_mf", {}),
    "lm_lightgcn": ("lm_lightgcn", {}),
    "text_seq": ("text_seq", {}),
}
EASE_LAMBDAS = (250.0, 500.0, 700.0, 1000.0)
TEXT_WEIGHTS = (0.5, 1.0, 2.0)


def _fit_eval(name: str, params: dict, prepared, seed: int, stage: str = "test") -> dict[str, Any]:
    """One ``fusionrec.experiment.run`` of ``name`` on the prepared split (the CLI's chain)."""
    cfg = ExperimentConfig(
        data=prepared.data, model=ModelSpec(name=name, params=params), eval=EVAL, seed=seed
    )
    res = run(cfg, RunOptions(stage=stage), prepared)
    return {
        "ndcg@10": res.metrics["ndcg@10"],
        "recall@10": res.metrics["recall@10"],
        "fit_s": res.fit_seconds,
        "epochs": res.epochs_run,
        "best_epoch": res.best_epoch,
        "model": res.recommender,
    }


def _prepared(ds, protocol: str, seed: int):
    return prepare(DataConfig(name=ds.name, protocol=protocol, ratios=(0.8, 0.1, 0.1)), seed, ds)


def _tuned_on_valid(name: str, grid: list[dict], prepared, seed: int) -> tuple[dict, dict]:
    """Fit every grid point, pick the best valid NDCG@10, return (its params, its test row)."""
    best, best_p, best_m = -1.0, None, None
    for p in grid:
        r = _fit_eval(name, p, prepared, seed, stage="valid")
        if r["ndcg@10"] > best:
            best, best_p, best_m = r["ndcg@10"], p, r["model"]
    res = EV.evaluate_split(best_m, prepared.split)
    return best_p, {"ndcg@10": res["ndcg@10"], "recall@10": res["recall@10"], "valid": best}


def _row(label: str, r: dict) -> str:
    ep = "" if r.get("epochs") is None else f"{r['epochs']} (best {r['best_epoch']})"
    return f"| {label} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['fit_s']:.1f} | {ep} |"


def warm(ds, seeds: list[int], pairs: list[str], seq_epochs: int | None = None) -> None:
    titles = {"rs": "RS 8:1:1", "loo": "leave-one-out"}
    for seed in seeds:
        for protocol in dict.fromkeys(PAIR_PROTOCOL.get(k, "rs") for k in pairs):
            sp = _prepared(ds, protocol, seed)
            print(f"\n## warm: ml-100k {titles[protocol]}, split seed {seed}, full ranking\n")
            print("| model | NDCG@10 | Recall@10 | fit s | epochs |\n|---|---|---|---|---|")
            for k in pairs:
                if PAIR_PROTOCOL.get(k, "rs") != protocol:
                    continue
                for name, params in PAIRS[k]:
                    if seq_epochs is not None and protocol == "loo":  # same budget for both
                        params = {**params, "epochs": seq_epochs}
                    r = _fit_eval(name, params, sp, seed)
                    extra = f" (cold_weight {r['model'].cold_weight_})" if name == "lm_ease" else ""
                    print(_row(name + extra, r), flush=True)
        if "EASE" not in pairs:
            continue
        sp = _prepared(ds, "rs", seed)
        print("\nTuned on the validation split (test reported for the valid pick):\n")
        p, r = _tuned_on_valid("ease", [{"reg_weight": lam} for lam in EASE_LAMBDAS], sp, seed)
        print(f"- ease: pick {p} -> valid {r['valid']:.4f}, test NDCG@10 {r['ndcg@10']:.4f}")
        grid = [{"reg_weight": lam, "text_weight": w} for lam in EASE_LAMBDAS for w in TEXT_WEIGHTS]
        p, r = _tuned_on_valid("lm_ease", grid, sp, seed)
        print(f"- lm_ease: pick {p} -> valid {r['valid']:.4f}, test NDCG@10 {r['ndcg@10']:.4f}")


def cold(ds, seed: int) -> None:
    sp = _prepared(ds, "cold-item", seed)
    print(f"\n## cold-item: 10 % of items held out whole for test, split seed {seed}\n")
    print("| model | NDCG@10 | Recall@10 | fit s | epochs |\n|---|---|---|---|---|")
    rows = {}
    for label, (name, params) in COLD_MODELS.items():
        rows[label] = _fit_eval(name, params, sp, seed)
        print(_row(label, rows[label]), flush=True)
    pop = rows["pop"]["ndcg@10"]
    print(
        "\nPop scores never-seen items 0, so its NDCG@10 on this protocol is "
        f"{pop:.4f}; any positive NDCG@10 is an unbounded multiple of it."
    )


def encode(ds, threads: int) -> None:
    texts = render_item_texts(ds)
    enc = load_text_encoder()
    print(f"\n## encoding ({len(texts)} ml-100k item texts, all-MiniLM-L6-v2, {threads} threads)\n")
    t0 = time.perf_counter()
    encode_texts(texts, enc, batch_size=64, use_cache=False)
    cold_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        st1, st2 = EncodeStats(), EncodeStats()
        encode_items(ds, enc, cache_dir=tmp, stats=st1)
        encode_items(ds, enc, cache_dir=tmp, stats=st2)
    print("| run | items/s | seconds | cache hits |\n|---|---|---|---|")
    print(f"| no cache | {len(texts) / cold_s:.0f} | {cold_s:.1f} | - |")
    print(
        f"| empty cache (encode + write) | {st1.n_texts / st1.seconds:.0f} | {st1.seconds:.1f} | {st1.cache_hits} |"
    )
    print(
        f"| warm cache | {st2.n_texts / st2.seconds:.0f} | {st2.seconds:.2f} | {st2.cache_hits} |"
    )


def finetune(ds) -> None:
    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=2020)
    n = 8192
    sub = sp.train.with_interactions(np.arange(n), name="ml-100k:train-8k")
    print(f"\n## fine-tuning (lm_mf, {n} training pairs, batch 1024, 64 live items per step)\n")
    print("| encoder | s/epoch | fit s (incl. encoder load, re-embedding) |\n|---|---|---|")
    for mode in ("frozen", "top_n", "lora"):
        m = get_model("lm_mf")(
            epochs=2,
            batch_size=1024,
            device="cpu",
            encoder_finetune=mode,
            live_items=64,
            patience=0,
        )
        t0 = time.perf_counter()
        m.fit(sub, seed=0)
        secs = [r["seconds"] for r in m.history_.records]
        print(f"| {mode} | {np.mean(secs):.1f} | {time.perf_counter() - t0:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma list of: warm,cold,encode,finetune")
    ap.add_argument("--seeds", default="2020", help="warm protocol split seeds, e.g. 2020,1,2")
    ap.add_argument("--pairs", default=",".join(PAIRS), help=f"warm pairs among {list(PAIRS)}")
    ap.add_argument(
        "--seq-epochs",
        type=int,
        default=None,
        help="epoch budget of the leave-one-out pair (SASRec / lm_sasrec); default: their own",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the encode section")
    args = ap.parse_args()
    sections = set(args.only.split(",")) if args.only else {"warm", "cold", "encode", "finetune"}
    unknown = sections - {"warm", "cold", "encode", "finetune"}
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}")
    bad_pairs = set(args.pairs.split(",")) - set(PAIRS)
    if bad_pairs:
        ap.error(f"unknown pairs {sorted(bad_pairs)}; choose among {list(PAIRS)}")
    print(f"load average at start: {os.getloadavg()}  cpus: {os.cpu_count()}")
    ds = load_dataset("ml-100k")
    if "encode" in sections:
        old = torch.get_num_threads()
        torch.set_num_threads(args.threads)
        encode(ds, args.threads)
        torch.set_num_threads(old)
    if sections & {"warm", "cold", "finetune"}:
        ds = ds.with_item_embedding("text", encode_items(ds))  # cached after the first run
    if "warm" in sections:
        warm(ds, [int(s) for s in args.seeds.split(",")], args.pairs.split(","), args.seq_epochs)
    if "cold" in sections:
        cold(ds, 2020)
    if "finetune" in sections:
        finetune(ds)
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
