"""Post-training compression of torch models: quality, size, memory and latency per method.

    python benchmarks/compression.py [--models bpr,lightgcn,neumf,two_tower,sasrec]
        [--methods int8,fp16,bf16,prune:0.5,prune-structured:0.25,onnx] [--epochs 20]
        [--users 200] [--out runs/compression]
    python benchmarks/compression.py --models lm_mf,lm_sasrec,lm_lightgcn,joint,distill,ease,lm_ease \
        --out runs/compression-more

The text models encode the ml-100k titles with the bundled sentence encoder (cached on disk
after the first run); the EASE family takes fp16 and bf16 only (its one dense B), so other
methods are left out of its rows.

Each model is trained briefly on ml-100k (RS 8:1:1, seed 2020) through the experiment runner
and saved; each method compresses that folder (``fusionrec.compress.compress_folder``). Per
row: NDCG@10 on the test split (full ranking, the loaded compressed folder), bytes on disk
of the folder, resident memory of the loaded model (RSS after loading and scoring one user
minus RSS before loading, in a fresh subprocess that has already imported torch, torchao and
onnxruntime, so the libraries are not counted) and scoring latency per user (full-catalogue
``score_indices`` of one user, p50 over ``--users`` users, one thread). The table is printed
and written as ``compression.json`` and ``compression.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_EPOCHS = {
    "bpr": 30, "lightgcn": 20, "neumf": 10, "two_tower": 15, "sasrec": 10,
    "lm_mf": 20, "lm_sasrec": 10, "lm_lightgcn": 10, "joint": 15, "distill": 20,
}
#: parameters beyond the defaults: ml-100k has no KG for joint; distill learns from EASE
DEFAULT_PARAMS: dict[str, dict] = {
    "joint": {"sources": ["user", "text"]},
    "distill": {"teacher": {"name": "ease"}, "embedding_dim": 32},
}
#: models without a torch module: only these methods apply
DENSE_METHODS = {"ease": ("fp16", "bf16"), "lm_ease": ("fp16", "bf16"), "kg_ease": ("fp16", "bf16")}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(folder: str, n_users: int) -> dict:
    """In this (fresh) process: RSS delta of loading ``folder`` and p50 per-user latency."""
    import gc
    import warnings

    import numpy as np
    import onnxruntime  # noqa: F401 - imported before the baseline so it is not counted
    import torch

    warnings.filterwarnings("ignore")
    try:
        import torchao  # noqa: F401
    except ImportError:
        pass
    from fusionrec.models.base import load_model
    from fusionrec.models.registry import get_model

    torch.set_num_threads(1)
    meta = json.loads((Path(folder) / "config.json").read_text())
    get_model(meta["model"])  # model code imported before the baseline: only the model counts
    if meta["model"] == "compressed":
        get_model(meta["params"]["base"])
    gc.collect()
    before = _rss_bytes()
    model = load_model(folder, device="cpu")
    model.score_indices(np.array([0], dtype=np.int64))  # warm-up: lazy caches count as resident
    gc.collect()
    rss = _rss_bytes() - before
    rng = np.random.default_rng(2020)
    users = rng.choice(model.n_users, size=min(n_users, model.n_users), replace=False)
    times = []
    for u in users:
        t0 = time.perf_counter()
        model.score_indices(np.array([u], dtype=np.int64))
        times.append(time.perf_counter() - t0)
    return {"rss_bytes": int(rss), "latency_p50_ms": float(np.median(times) * 1e3), "latency_p90_ms": float(np.quantile(times, 0.9) * 1e3)}


def weight_bytes(folder: Path) -> int:
    """Bytes of the model's weights alone: the module tensors of every ``state.safetensors``
    in the folder (a distilled model's student included; ``module.*`` uncompressed, ``c.*``
    compressed, EASE's ``B``) plus ``model.onnx`` when there is one."""
    import struct

    total = 0
    for state in Path(folder).rglob("state.safetensors"):
        with state.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        total += sum(
            t["data_offsets"][1] - t["data_offsets"][0]
            for k, t in header.items()
            if k.startswith(("module.", "c.")) or k == "B"
        )
    onnx = Path(folder) / "model.onnx"
    return total + (onnx.stat().st_size if onnx.exists() else 0)


def _measure_subprocess(folder: Path, n_users: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", str(folder), "--users", str(n_users)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {folder} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _markdown(rows: list[dict]) -> str:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        out.append(f"\n**{model}**\n")
        out.append("| method | NDCG@10 | folder on disk | weights on disk | RSS of the loaded model | latency p50 / user | max abs score error | top-10 overlap |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            if r["model"] != model:
                continue
            if "error" in r:
                out.append(f"| {r['method']} | failed: {r['error'][:80]} | | | | | | |")
                continue
            out.append(
                f"| {r['method']} | {r['ndcg@10']:.4f} | {r['bytes'] / 1e6:.2f} MB | {r['weight_bytes'] / 1e6:.3f} MB | {r['rss_bytes'] / 1e6:.1f} MB | "
                f"{r['latency_p50_ms']:.3f} ms | {r['max_abs_err']:.2e} | {r['top10_overlap']:.3f} |"
            )
    return "\n".join(out).lstrip() + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="bpr,lightgcn,neumf,two_tower,sasrec")
    ap.add_argument("--methods", default="int8,fp16,bf16,prune:0.5,prune-structured:0.25,onnx")
    ap.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: a short per-model budget)")
    ap.add_argument("--users", type=int, default=200, help="users timed per row")
    ap.add_argument("--out", default="runs/compression")
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.users)))
        return

    import numpy as np

    from fusionrec.compress import compress_folder, folder_bytes
    from fusionrec.evaluation import Evaluator
    from fusionrec.experiment import RunOptions, prepare, run
    from fusionrec.experiment.config import config_from_dict
    from fusionrec.models.base import load_model
    from fusionrec.ranking import mask_seen, topk

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    data = {"name": "ml-100k", "protocol": "rs", "ratios": [0.8, 0.1, 0.1]}
    prep = None
    for name in args.models.split(","):
        epochs = args.epochs or DEFAULT_EPOCHS.get(name, 10)
        dense = name in DENSE_METHODS
        cfg = config_from_dict({
            "data": data, "model": {"name": name, "params": DEFAULT_PARAMS.get(name, {})},
            "train": {} if dense else {"epochs": epochs, "patience": 5},
            "eval": {"metrics": ["ndcg"], "ks": [10]}, "seed": 2020,
        })
        if prep is None:
            prep = prepare(cfg.data, cfg.seed)
        t0 = time.perf_counter()
        res = run(cfg, RunOptions(output_dir=out / name), prep)
        print(f"{name}: trained {'(closed form)' if dense else f'{epochs} epochs max'} in {time.perf_counter() - t0:.0f}s, NDCG@10 {res.metrics['ndcg@10']:.4f}", flush=True)
        src = Path(res.model_dir)
        fp32 = load_model(src, device="cpu")
        test_users = np.unique(prep.split.test.user_idx)
        ref = fp32.score_indices(test_users)
        ref_top, _ = topk(mask_seen(ref.copy(), test_users, fp32.seen_), 10)
        methods = [m for m in args.methods.split(",") if not dense or m in DENSE_METHODS[name]]
        variants = [("fp32", src)] + [(m, out / name / f"compressed-{m.replace(':', '-')}") for m in methods]
        for method, folder in variants:
            row: dict = {"model": name, "method": method}
            try:
                if method != "fp32":
                    if folder.exists():
                        import shutil

                        shutil.rmtree(folder)
                    t1 = time.perf_counter()
                    compress_folder(src, method, folder)
                    row["compress_s"] = round(time.perf_counter() - t1, 2)
                model = load_model(folder, device="cpu")
                ev = Evaluator(metrics=("ndcg",), ks=(10,), seed=2020).evaluate_split(model, prep.split, "test")
                sc = model.score_indices(test_users)
                top, _ = topk(mask_seen(sc.copy(), test_users, model.seen_), 10)
                overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top, strict=True)])
                row.update({
                    "ndcg@10": round(float(ev.metrics["ndcg@10"]), 4),
                    "bytes": folder_bytes(folder),
                    "weight_bytes": weight_bytes(folder),
                    "max_abs_err": float(np.abs(sc - ref).max()),
                    "top10_overlap": round(float(overlap), 4),
                    **_measure_subprocess(folder, args.users),
                })
            except Exception as e:  # one failing method must not lose the table
                row["error"] = f"{type(e).__name__}: {e}"
            rows.append(row)
            print(json.dumps(row), flush=True)
    (out / "compression.json").write_text(json.dumps(rows, indent=2))
    md = _markdown(rows)
    (out / "compression.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
