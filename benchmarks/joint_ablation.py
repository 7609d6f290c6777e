"""Ablation of the ``joint`` model's sources and loss terms on MovieLens-100k.

    python benchmarks/joint_ablation.py [--seeds 2020,1,2] [--grid JSON | --grid-file F]
        [--select per-seed|first-seed] [--rows id,user,text,kg,-user,-text,-kg] [--drop-terms]
        [--epochs N] [--patience N] [--finetune frozen|lora|top_n|full] [--params JSON]
        [--ease] [--output DIR]

Protocol: RS 8:1:1 (per user, random order) for each split seed, in sequence; full ranking;
early stopping on validation NDCG@10. Every choice is made on validation, test is read once per
reported row:

1. ``--grid`` (a JSON list of parameter dicts, default ``DEFAULT_GRID``): each candidate is
   fitted as the full joint model (all of user, text, kg); the one with the best *valid*
   NDCG@10 is chosen, on every seed's own split (``--select per-seed``, default) or once on the
   first seed for all (``first-seed``). The chosen fit is the ``joint`` row (no refit); the other
   candidates' test scores are never computed.
2. Rows (``--rows``), each one ``joint`` model fitted with the chosen parameters for the parts it
   has: ``id`` (sources [] = BPR-MF), ``user``, ``text``, ``kg`` (ID + that one source), and
   ``-user``, ``-text``, ``-kg`` (the joint model without that source); ``--drop-terms`` adds
   ``joint-L_user`` ... (the source kept in the score, its auxiliary loss switched off).

Prints, per fit, valid (and for reported rows test) NDCG@10 with the last logged loss terms; at
the end one markdown table (valid / test per seed, test mean), the chosen settings per seed and
whether the joint model is above its best single-source ablation on each seed and on the mean.
Writes ``joint_ablation.json`` (rewritten after every fit) and ``joint_ablation.md`` to
``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _joint_data import add_common_args, ml100k_with_text, rs_split

ALL = ["user", "text", "kg"]
SINGLE: dict[str, list[str]] = {"id": [], "user": ["user"], "text": ["text"], "kg": ["kg"]}
LEAVE_ONE_OUT: dict[str, list[str]] = {f"-{s}": [x for x in ALL if x != s] for s in ALL}
ROWS: dict[str, list[str]] = {**SINGLE, **LEAVE_ONE_OUT}
# the settings of the measured run (docs/joint.md); each candidate is merged over --params
DEFAULT_GRID: list[dict[str, Any]] = [
    {"source_lr": {"text": 0.001}},
    {"fusion": {"text": "prior", "user": "prior"}},
    {"fusion": {"text": "prior", "user": "prior"}, "loss_weights": {"prior": 0.1}},
]


def fit_valid(sp: Any, params: dict[str, Any], seed: int, name: str = "joint") -> tuple[Any, dict[str, Any]]:
    """Fit on ``sp.train`` (early stopping on ``sp.valid``); the model and its valid record."""
    from fusionrec.evaluation.evaluator import Evaluator
    from fusionrec.models import get_model

    t0 = time.perf_counter()
    model = get_model(name)(**params).fit(sp.train, sp.valid, seed=seed)
    fit_s = time.perf_counter() - t0
    va = Evaluator(metrics=("ndcg",), ks=(10,)).evaluate(model, sp.valid, exclude=(sp.train,))
    records = list(getattr(getattr(model, "history_", None), "records", []) or [])
    losses = {k: v for k, v in records[-1].items() if k.startswith("loss_")} if records else {}
    return model, {
        "valid_ndcg@10": float(va["ndcg@10"]),
        "fit_s": fit_s,
        "epochs": len(records),
        "best_epoch": getattr(getattr(model, "history_", None), "best_epoch", None),
        "last_losses": losses,
    }


def add_test(model: Any, sp: Any, rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with the model's test NDCG@10 and Recall@10 (train and valid items masked)."""
    from fusionrec.evaluation.evaluator import Evaluator

    te = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate(model, sp.test, exclude=(sp.train, sp.valid))
    return {**rec, "ndcg@10": float(te["ndcg@10"]), "recall@10": float(te["recall@10"])}


def _print(tag: str, sd: int, r: dict[str, Any]) -> None:
    test = f" test {r['ndcg@10']:.4f}" if "ndcg@10" in r else ""
    losses = json.dumps({k: round(v, 4) for k, v in r["last_losses"].items()})
    print(
        f"seed {sd} {tag}: valid {r['valid_ndcg@10']:.4f}{test} ({r['fit_s']:.0f}s, {r['epochs']} ep, "
        f"best {r['best_epoch']}) {losses}",
        flush=True,
    )


def choose(scored: list[tuple[float, dict[str, Any]]]) -> int:
    """Index of the best valid NDCG@10 (the first one on a tie)."""
    if not scored:
        raise ValueError("the grid is empty: give at least one candidate")
    return max(range(len(scored)), key=lambda k: (scored[k][0], -k))


def table(out: dict[str, dict[str, dict[str, Any]]], seeds: list[int]) -> list[str]:
    """Markdown rows: valid / test NDCG@10 per seed and the test mean, per variant."""
    head = " | ".join(f"seed {s}" for s in seeds)
    lines = [f"| variant | {head} | test mean |", "|---" + "|---" * len(seeds) + "|---:|"]
    for v, per in out.items():
        if not all(str(s) in per and "ndcg@10" in per[str(s)] for s in seeds):
            continue
        cells = " | ".join(f"{per[str(s)]['valid_ndcg@10']:.4f} / {per[str(s)]['ndcg@10']:.4f}" for s in seeds)
        mean = sum(per[str(s)]["ndcg@10"] for s in seeds) / len(seeds)
        lines.append(f"| {v} | {cells} | {mean:.4f} |")
    return lines


def verdict(out: dict[str, dict[str, dict[str, Any]]], seeds: list[int]) -> list[str]:
    """Whether ``joint`` is above the best single-source row (id, user, text, kg), per seed
    (that seed's best) and on the test mean (the best mean)."""
    single = [v for v in SINGLE if v in out and all(str(s) in out[v] for s in seeds)]
    if "joint" not in out or not single:
        return []
    lines = []
    for s in seeds:
        best = max(single, key=lambda v: out[v][str(s)]["ndcg@10"])
        j, b = out["joint"][str(s)]["ndcg@10"], out[best][str(s)]["ndcg@10"]
        lines.append(f"seed {s}: joint {j:.4f} vs best single-source {best} {b:.4f} ({j - b:+.4f})")
    mean = {v: sum(out[v][str(s)]["ndcg@10"] for s in seeds) / len(seeds) for v in ["joint", *single]}
    best = max(single, key=lambda v: mean[v])
    lines.append(f"mean: joint {mean['joint']:.4f} vs best single-source {best} {mean[best]:.4f} ({mean['joint'] - mean[best]:+.4f})")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="2020,1,2")
    p.add_argument("--grid", default=None, help="JSON list of joint parameter dicts chosen on valid")
    p.add_argument("--grid-file", default=None, help="file holding the --grid JSON")
    p.add_argument("--select", choices=("per-seed", "first-seed"), default="per-seed")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--drop-terms", action="store_true")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--finetune", default="frozen")
    p.add_argument("--ease", action="store_true", help="add an EASE row")
    add_common_args(p, "runs/joint_ablation")
    a = p.parse_args(argv)

    grid = json.loads(Path(a.grid_file).read_text() if a.grid_file else a.grid) if (a.grid or a.grid_file) else DEFAULT_GRID
    rows = [r for r in a.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; known: {list(ROWS)}")
    ds = ml100k_with_text(a.threads)
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    base: dict[str, Any] = {"epochs": a.epochs, "patience": a.patience, **json.loads(a.params)}
    if a.finetune != "frozen":
        base |= {"encoder_finetune": a.finetune, "lora_r": 4, "live_items": 32}
    dest = Path(a.output)
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, dict[str, Any]]] = {"joint": {}}
    report: dict[str, Any] = {"base_params": dict(base), "grid": grid, "select": a.select, "chosen": {}, "candidates": {}}

    def save() -> None:
        report["rows"] = out
        (dest / "joint_ablation.json").write_text(json.dumps(report, indent=1))

    chosen: dict[str, Any] | None = None
    for sd in seeds:
        sp = rs_split(ds, sd)
        if chosen is None or a.select == "per-seed":
            fits, scored = [], []
            for cand in grid:
                model, r = fit_valid(sp, {**base, **cand, "sources": ALL}, sd)
                _print(f"candidate {json.dumps(cand)}", sd, r)
                fits.append((model, r))
                scored.append((r["valid_ndcg@10"], cand))
            k = choose(scored)
            chosen = grid[k]
            report["candidates"][str(sd)] = [{"params": c, "valid_ndcg@10": v} for v, c in scored]
            report["chosen"][str(sd)] = chosen
            print(f"seed {sd} chosen on valid NDCG@10: {json.dumps(chosen)}", flush=True)
            joint_model, joint_rec = fits[k]
            del fits
        else:
            joint_model, joint_rec = fit_valid(sp, {**base, **chosen, "sources": ALL}, sd)
            report["chosen"][str(sd)] = chosen
        out["joint"][str(sd)] = add_test(joint_model, sp, joint_rec)
        _print("joint (chosen)", sd, out["joint"][str(sd)])
        save()
        params = {**base, **chosen}
        weights = dict(params.get("loss_weights", {}))
        runs: dict[str, tuple[str, dict[str, Any]]] = {v: ("joint", {**params, "sources": ROWS[v]}) for v in rows}
        if a.drop_terms:
            for term in ALL:
                runs[f"joint-L_{term}"] = ("joint", {**params, "sources": ALL, "loss_weights": {**weights, term: 0.0}})
        if a.ease:
            runs["ease"] = ("ease", {})
        for v, (name, prm) in runs.items():
            model, r = fit_valid(sp, prm, sd, name)
            out.setdefault(v, {})[str(sd)] = add_test(model, sp, r)
            _print(v, sd, out[v][str(sd)])
            save()
    lines = table(out, seeds)
    lines += ["", "chosen per seed: " + "; ".join(f"{s}: {json.dumps(c)}" for s, c in report["chosen"].items())]
    lines += ["", *verdict(out, seeds)]
    report["verdict"] = verdict(out, seeds)
    save()
    (dest / "joint_ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
