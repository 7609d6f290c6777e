"""Source ablation: ID-only vs +text vs +KG vs +text+KG (and KGAT) on the same split(s).

``run_ablation`` is the library side of ``fusionrec ablation`` and ``benchmarks/kg_ablation.py``;
heavy imports stay inside the functions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fusionrec._fsutil import atomic_write_text

__all__ = ["run_ablation", "VARIANTS", "SPARSE_USERS", "write_ablation_report"]

#: variant name -> (model, extra parameters); "text" needs the text modality, "kg" a KG.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "id": ("mm_mf", {}),
    "text": ("mm_mf", {"modalities": ["text"]}),
    "kg": ("cke", {}),
    "text+kg": ("cke", {"modalities": ["text"]}),
    "kgat": ("kgat", {}),
}
SPARSE_USERS = 20  # slice: users with fewer training interactions than this


def _text_embeddings(ds: Any) -> tuple[Any, str | None]:
    """(matrix, None) from fusionrec.encoders.text.encode_items, or (None, reason)."""
    try:
        from fusionrec.encoders.text import encode_items
    except ImportError as e:
        return None, f"text encoder unavailable ({e})"
    try:
        return encode_items(ds), None
    except Exception as e:  # noqa: BLE001 - a missing model must not stop the other variants
        return None, f"text encoding failed: {type(e).__name__}: {e}"


def run_ablation(
    ds: Any,
    variants: list[str] | None = None,
    *,
    epochs: int | None = None,
    patience: int | None = None,
    seed: int | Sequence[int] = 2020,
    params: dict[str, dict[str, Any]] | None = None,
    text: Any = None,
    log: Any = print,
    options: Any = None,
) -> dict[str, Any]:
    """Train each variant on ``split(ds, "rs", (0.8, 0.1, 0.1), seed)`` (early stopping on valid
    NDCG@10), evaluate on test with full ranking, and return a JSON-able report: per variant
    NDCG@10, Recall@10, fit seconds, and the same metrics for users with < 20 training
    interactions. ``text``: an (n_items, d) matrix to use as the "text" modality (computed with
    ``encode_items`` when None and a text variant is asked for).

    ``seed`` may be several seeds: each seed is one split (and the fits' seed); a row then holds
    the mean over seeds of every metric and of the fit seconds, and ``per_seed`` the values of
    each seed (NDCG@10 and the slice's NDCG@10), so a gain can be told from split noise.

    Every variant is one ``fusionrec.experiment.run`` on the shared split; ``options`` (a
    ``RunOptions``: device, threads) applies to each. ``log`` gets what is being fitted and a
    progress line every 5 epochs with the time per epoch and the most time left."""
    import numpy as np

    from fusionrec.errors import ConfigError
    from fusionrec.experiment.config import DataConfig, EvalConfig
    from fusionrec.experiment.runner import prepare

    variants = list(variants or ["id", "text", "kg", "text+kg"])
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ConfigError(f"unknown ablation variant(s) {bad}; choose from {', '.join(VARIANTS)}")
    notes: list[str] = []
    if any("text" in v.split("+") for v in variants) and "text" not in ds.item_embeddings:
        if text is None:
            t0 = time.perf_counter()
            text, why = _text_embeddings(ds)
            if text is not None:
                log(f"text embeddings {text.shape} in {time.perf_counter() - t0:.1f}s")
        if text is None:
            notes.append(f"+text variants skipped: {why}")
            variants = [v for v in variants if "text" not in v.split("+")]
        else:
            ds = ds.with_item_embedding("text", np.asarray(text, dtype=np.float32))
    if any(VARIANTS[v][0] in ("cke", "kgat") for v in variants) and ds.kg is None:
        notes.append("KG variants skipped: the dataset has no knowledge graph")
        variants = [v for v in variants if VARIANTS[v][0] not in ("cke", "kgat")]
    seeds = [seed] if isinstance(seed, int) else [int(x) for x in seed]
    if not seeds:
        raise ConfigError("run_ablation needs at least one seed")
    ev = EvalConfig(metrics=["ndcg", "recall"], ks=[10])
    data = DataConfig(name=ds.name, protocol="rs", ratios=(0.8, 0.1, 0.1))
    log(
        f"ablation: {len(variants)} variant(s) x {len(seeds)} split seed(s) = "
        f"{len(variants) * len(seeds)} fits, each up to its epoch budget with early stopping on "
        "valid NDCG@10 (a few minutes per variant on one CPU core); progress every 5 epochs"
    )
    per: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for sd in seeds:
        if len(seeds) > 1:
            log(f"split seed {sd}")
        prepared = prepare(data, sd, ds)
        for v, row in _ablation_rows(prepared, variants, ev, epochs, patience, params, log, options):
            per[v].append(row)
    rows = [per[v][0] if len(seeds) == 1 else _mean_row(per[v], seeds) for v in variants]
    seed_txt = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over split seeds {seeds}"
    return {
        "dataset": ds.name,
        "protocol": f"rs 8:1:1, {seed_txt}, full ranking, train (and valid) items masked",
        "seeds": seeds,
        "sparse_slice": f"users with < {SPARSE_USERS} training interactions",
        "rows": rows,
        "notes": notes,
    }


_MEAN_KEYS = ("ndcg@10", "recall@10", "fit_seconds", "sparse_ndcg@10", "sparse_recall@10")


def _mean_row(rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    import numpy as np

    out = dict(rows[0])
    for k in _MEAN_KEYS:
        out[k] = float(np.mean([r[k] for r in rows]))
    out["sparse_users"] = float(np.mean([r["sparse_users"] for r in rows]))
    out["epochs_run"] = [r["epochs_run"] for r in rows]
    out["best_epoch"] = [r["best_epoch"] for r in rows]
    out["per_seed"] = {
        str(sd): {"ndcg@10": r["ndcg@10"], "sparse_ndcg@10": r["sparse_ndcg@10"]}
        for sd, r in zip(seeds, rows, strict=True)
    }
    return out


def _ablation_rows(
    prepared: Any,
    variants: list[str],
    ev: Any,
    epochs: int | None,
    patience: int | None,
    params: dict[str, dict[str, Any]] | None,
    log: Any,
    options: Any = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(variant, row) for each variant fitted on one split through ``experiment.run``."""
    from fusionrec.experiment import runner
    from fusionrec.experiment.config import ExperimentConfig, ModelSpec
    from fusionrec.experiment.options import RunOptions
    from fusionrec.experiment.progress import EpochProgress, epoch_budget

    sparse_mask = prepared.split.train.user_activity() < SPARSE_USERS
    progress = EpochProgress(log, every=5)
    for v in variants:
        model_name, extra = VARIANTS[v]
        budget = {"epochs": epochs, "patience": patience}
        p = {
            **{k: x for k, x in budget.items() if x is not None},
            **extra,
            **(params or {}).get(v, {}),
        }
        cfg = ExperimentConfig(
            data=prepared.data, model=ModelSpec(name=model_name, params=p), eval=ev, seed=prepared.seed
        )
        max_epochs = epoch_budget(cfg)
        progress.start(f"{v:>8}", max_epochs)
        log(f"{v:>8}: fitting {model_name}" + (f" (up to {max_epochs} epochs)" if max_epochs else ""))
        opts = (options or RunOptions()).replace(output_dir=None, stage="test")
        res = runner.run(cfg, opts.replace(callbacks=(*opts.callbacks, progress)), prepared)
        sl = res.evaluation.slice(sparse_mask)
        row = {
            "variant": v,
            "model": model_name,
            "params": p,
            "ndcg@10": res.metrics["ndcg@10"],
            "recall@10": res.metrics["recall@10"],
            "fit_seconds": res.fit_seconds,
            "epochs_run": res.epochs_run,
            "best_epoch": res.best_epoch,
            "sparse_ndcg@10": sl["ndcg@10"],
            "sparse_recall@10": sl["recall@10"],
            "sparse_users": sl["users"],
        }
        log(
            f"{v:>8}: ndcg@10 {row['ndcg@10']:.4f} recall@10 {row['recall@10']:.4f} (<{SPARSE_USERS}: ndcg@10 {row['sparse_ndcg@10']:.4f}) fit {res.fit_seconds:.1f}s"
        )
        yield v, row


def write_ablation_report(
    report: dict[str, Any], out: Path, extra_rows: list[dict[str, Any]] = ()
) -> list[Path]:
    """Write ablation.json, ablation.md and ablation.png (NDCG@10, all users vs the sparse slice)."""
    rows = [*report["rows"], *extra_rows]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "ablation.json", json.dumps({**report, "rows": rows}, indent=2, default=str)
    )
    n_sparse = next((r["sparse_users"] for r in rows if r.get("sparse_users")), 0)
    multi = len(report.get("seeds") or []) > 1
    lines = [
        f"# Ablation on {report['dataset']}",
        "",
        f"Protocol: {report['protocol']}. Slice: {report['sparse_slice']} ({n_sparse:g} test users).",
        "",
        "| variant | model | NDCG@10 | Recall@10 | NDCG@10 (<20) | Recall@10 (<20) | fit s |"
        + (" NDCG@10 per seed | NDCG@10 (<20) per seed |" if multi else ""),
        "|---|---|---:|---:|---:|---:|---:|" + ("---|---|" if multi else ""),
    ]
    for r in rows:
        line = (
            f"| {r['variant']} | {r['model']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | "
            f"{r['sparse_ndcg@10']:.4f} | {r['sparse_recall@10']:.4f} | {r['fit_seconds']:.1f} |"
        )
        if multi:
            ps = r.get("per_seed") or {}
            line += (
                " " + " / ".join(f"{x['ndcg@10']:.4f}" for x in ps.values()) + " |"
                " " + " / ".join(f"{x['sparse_ndcg@10']:.4f}" for x in ps.values()) + " |"
                if ps
                else " — | — |"
            )
        lines.append(line)
    lines += ["", *[f"- {n}" for n in report.get("notes", [])]]
    atomic_write_text(out / "ablation.md", "\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(1.6 * max(len(rows), 2) + 2, 3.6))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["ndcg@10"] for r in rows], 0.4, label="all users")
    ax.bar(x + 0.2, [r["sparse_ndcg@10"] for r in rows], 0.4, label="users < 20 train interactions")
    ax.set_xticks(x, [r["variant"] for r in rows], rotation=20)
    ax.set_ylabel("NDCG@10")
    ax.set_title(f"Ablation on {report['dataset']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = out / "ablation.png"
    tmp = out / ".ablation.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(png)
    return [out / "ablation.json", out / "ablation.md", png]
