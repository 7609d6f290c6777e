"""Issue 16's quality goals on ml-100k, RS 8:1:1, full ranking, top-10, per split seed.

    python benchmarks/quality_goals.py [--seeds 2020,1,2] [--no-cold] [--write docs/quality.md]

Every choice is made on the validation split: EASE's λ, lm_ease's cold weight, kg_ease's λ and
KG weight, the ensemble's members and weights (forward selection, ``Ensemble.fit_weights``).
Test NDCG@10 is reported at the validation-chosen setting only.

Two protocols, labelled in every row:

* ``train``: the models are fitted on the training split (RecBole's protocol; the figures
  comparable with RecBole 1.2.1's EASE 0.3291 on the identical split).
* ``refit``: after the choices above, each model is refitted with exactly those settings on
  train + valid (no early stopping, no new choice), and scored on test with train + valid
  masked, as the Evaluator always masks them. This is the usual "tune on valid, retrain on
  train+valid" protocol: it uses 9/10 of the data instead of 8/10, so it is not comparable with
  the ``train`` rows or with RecBole's figure.

``--cold`` (default on) adds the cold-item protocol at the first seed: kg_ease against EASE
(which cannot score an item nobody interacted with) to show that kg_ease uses the KG there.
``--ltr`` runs only the two-stage re-ranker section instead (``ltr_rerank`` at every seed next to
EASE and lm_ease, and its feature-group ablation: without the time features, without the KG
features, without the text features), written between ``<!-- quality_goals_ltr:begin -->`` and
``<!-- quality_goals_ltr:end -->``. ``--write FILE`` replaces the text between ``<!-- quality_goals:begin -->`` and
``<!-- quality_goals:end -->`` in FILE with the printed table. Not a test: it never fails on
speed; the machine this ran on is shared, so fit seconds are rough.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.data import load_dataset
from fusionrec.data.dataset import Dataset
from fusionrec.evaluation.evaluator import Evaluator
from fusionrec.experiment import prepare
from fusionrec.experiment.config import DataConfig
from fusionrec.models.base import Recommender
from fusionrec.models.composite.ensemble import Ensemble
from fusionrec.models.registry import get_model

EASE_GRID = (100.0, 200.0, 250.0, 300.0, 400.0, 500.0, 700.0, 1000.0)
BEGIN, END = "<!-- quality_goals:begin -->", "<!-- quality_goals:end -->"
LTR_BEGIN, LTR_END = "<!-- quality_goals_ltr:begin -->", "<!-- quality_goals_ltr:end -->"
#: ltr_rerank's feature-group ablation: label -> groups left out of every group (FEATURE_GROUPS)
LTR_ABLATION = {
    "ltr_rerank (all feature groups)": (),
    "ltr_rerank without time features (time, session)": ("time", "session"),
    "ltr_rerank without KG features": ("kg",),
    "ltr_rerank without text features": ("text",),
}
EV = Evaluator(ks=(10,), metrics=("ndcg",))


def train_plus_valid(train: Dataset, valid: Dataset) -> Dataset:
    """One Dataset with the interactions of both splits (id maps and side data shared)."""

    def cat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or b is None else np.concatenate([a, b])

    return replace(
        train,
        user_idx=np.concatenate([train.user_idx, valid.user_idx]),
        item_idx=np.concatenate([train.item_idx, valid.item_idx]),
        rating=cat(train.rating, valid.rating),
        timestamp=cat(train.timestamp, valid.timestamp),
        _cache={},
    )


class Row:
    """One model: what was chosen on valid, its valid NDCG@10, test NDCG@10 per protocol."""

    def __init__(self, name: str, model: Recommender, chosen: str, sp: Any, fit_s: float) -> None:
        self.name, self.model, self.chosen, self.fit_s = name, model, chosen, fit_s
        self.valid = EV.evaluate_split(model, sp, "valid")["ndcg@10"]
        self.test = EV.evaluate_split(model, sp)["ndcg@10"]
        self.refit: float | None = None


def _fit(name: str, params: dict, train: Dataset, valid: Dataset | None, seed: int) -> tuple[Recommender, float]:
    t = time.perf_counter()
    m = get_model(name)(**params).fit(train, valid, seed=seed)
    return m, time.perf_counter() - t


def _ease_tuned(sp: Any, seed: int) -> tuple[Recommender, float, float]:
    """EASE with λ chosen on valid from EASE_GRID: (model, λ, seconds)."""
    best, t0 = None, time.perf_counter()
    for lam in EASE_GRID:
        m, _ = _fit("ease", {"reg_weight": lam}, sp.train, sp.valid, seed)
        v = EV.evaluate_split(m, sp, "valid")["ndcg@10"]
        if best is None or v > best[0] + 1e-9:
            best = (v, m, lam)
    assert best is not None
    return best[1], best[2], time.perf_counter() - t0


def run_seed(ds: Dataset, seed: int, refit: bool) -> list[Row]:
    sp = prepare(DataConfig(name=ds.name, protocol="rs"), seed, ds).split
    rows: list[Row] = []
    m, s = _fit("ease", {}, sp.train, sp.valid, seed)
    rows.append(Row("EASE (λ=250, RecBole's setting)", m, "-", sp, s))
    ease_t, lam, s = _ease_tuned(sp, seed)
    rows.append(Row("EASE, λ on valid", ease_t, f"λ={lam:g}", sp, s))
    lm, s = _fit("lm_ease", {}, sp.train, sp.valid, seed)
    rows.append(Row("lm_ease (text)", lm, f"cold_weight={lm.cold_weight_:g}", sp, s))
    gcn, s = _fit("lightgcn", {}, sp.train, sp.valid, seed)
    rows.append(Row("LightGCN", gcn, "defaults", sp, s))
    kg, s = _fit("kg_ease", {}, sp.train, sp.valid, seed)
    rows.append(Row("kg_ease (KG)", kg, f"λ={kg.reg_weight_:g}, kg_weight={kg.kg_weight_:g}", sp, s))
    nokg, s = _fit("kg_ease", {"kg_weight": 0.0}, sp.train, sp.valid, seed)
    rows.append(Row("kg_ease without the KG (kg_weight=0)", nokg, f"λ={nokg.reg_weight_:g}", sp, s))
    pool = {"ease": ease_t, "lm_ease": lm, "lightgcn": gcn, "kg_ease": kg}
    t = time.perf_counter()
    ens = Ensemble.from_models(list(pool.values())).fit_weights(sp.valid, sp.train, seed=seed)
    mix = ", ".join(f"{n} {w:.1f}" for n, w in zip(pool, ens.weights_, strict=True) if w)
    rows.append(Row("ensemble (forward selection over the 4 above)", ens, mix, sp, time.perf_counter() - t))
    for r in rows:
        print(json.dumps({"seed": seed, "model": r.name, "chosen": r.chosen, "valid": round(r.valid, 4),
                          "test": round(r.test, 4), "fit_s": round(r.fit_s, 1)}), flush=True)
    if refit:
        _refit(rows, pool, ens, sp, seed)
    return rows


def _refit(rows: list[Row], pool: dict, ens: Ensemble, sp: Any, seed: int) -> None:
    """Refit each model at its validation-chosen settings on train+valid (no new choice)."""
    tv = train_plus_valid(sp.train, sp.valid)

    def test(m: Recommender) -> float:
        return EV.evaluate(m, sp.test, exclude=(sp.train, sp.valid))["ndcg@10"]

    lm = pool["lm_ease"]
    kg = pool["kg_ease"]
    fixed = {
        "EASE (λ=250, RecBole's setting)": ("ease", {}),
        "EASE, λ on valid": ("ease", {"reg_weight": pool["ease"].config.reg_weight}),
        "lm_ease (text)": ("lm_ease", {**lm.config.model_dump(), "cold_weight": lm.cold_weight_}),
        "LightGCN": ("lightgcn", pool["lightgcn"].config.model_dump()),
        "kg_ease (KG)": ("kg_ease", {"reg_weight": kg.reg_weight_, "kg_weight": kg.kg_weight_,
                                     "cold_weight": kg.cold_weight_}),
    }
    by_name = {r.name: r for r in rows}
    refitted: dict[str, Recommender] = {}
    for label, (name, params) in fixed.items():
        m, _ = _fit(name, params, tv, None, seed)
        refitted[label] = m
        by_name[label].refit = test(m)
    nk = by_name["kg_ease without the KG (kg_weight=0)"]
    m, _ = _fit("kg_ease", {"reg_weight": nk.model.reg_weight_, "kg_weight": 0.0,
                            "cold_weight": nk.model.cold_weight_}, tv, None, seed)
    nk.refit = test(m)
    labels = ["EASE, λ on valid", "lm_ease (text)", "LightGCN", "kg_ease (KG)"]
    members = [refitted[lb] for lb in labels]
    fused = Ensemble.from_models(members, weights=tuple(float(w) for w in ens.weights_))
    by_name["ensemble (forward selection over the 4 above)"].refit = test(fused)
    for r in rows:
        print(json.dumps({"seed": seed, "model": r.name, "refit_test": round(r.refit or 0, 4)}), flush=True)


def cold_section(ds: Dataset, seed: int) -> list[str]:
    """kg_ease vs EASE on the cold-item protocol (items held out whole)."""
    sp = prepare(DataConfig(name=ds.name, protocol="cold-item"), seed, ds).split
    out = []
    m, s = _fit("ease", {}, sp.train, sp.valid, seed)
    rows = [("EASE (λ=250)", m, s)]
    kg, s = _fit("kg_ease", {}, sp.train, sp.valid, seed)
    rows.append((f"kg_ease (KG; λ={kg.reg_weight_:g}, kg_weight={kg.kg_weight_:g}, "
                 f"cold_weight={kg.cold_weight_:g} chosen on valid)", kg, s))
    off, s = _fit("kg_ease", {"reg_weight": kg.reg_weight_, "kg_weight": kg.kg_weight_,
                              "cold_weight": 0.0}, sp.train, sp.valid, seed)
    rows.append(("the same kg_ease, KG read-out of cold items off (cold_weight=0)", off, s))
    for label, m, s in rows:
        r = EV.evaluate_split(m, sp)["ndcg@10"]
        out.append(f"| {label} | {r:.4f} |")
        print(json.dumps({"section": "cold", "seed": seed, "model": label, "test": round(r, 4),
                          "fit_s": round(s, 1)}), flush=True)
    return out


def table(per_seed: dict[int, list[Row]], refit: bool) -> list[str]:
    seeds = list(per_seed)
    first = per_seed[seeds[0]]
    head = ["model", f"chosen on valid (seed {seeds[0]})", f"valid (seed {seeds[0]})"]
    head += [f"test, seed {s}" for s in seeds] + ["test mean"]
    if refit:
        head += [f"refit test, seed {s}" for s in seeds] + ["refit mean"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(first):
        tests = [per_seed[s][i].test for s in seeds]
        cells = [r.name, r.chosen, f"{r.valid:.4f}"] + [f"{t:.4f}" for t in tests]
        cells.append(f"{np.mean(tests):.4f}")
        if refit:
            ref = [per_seed[s][i].refit or 0.0 for s in seeds]
            cells += [f"{t:.4f}" for t in ref] + [f"{np.mean(ref):.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for s in seeds[1:]:
        lines.append("")
        lines.append(f"Chosen on valid at seed {s}: " + "; ".join(f"{r.name}: {r.chosen}" for r in per_seed[s] if r.chosen not in ("-", "defaults")))
    return lines


def write(path: Path, lines: list[str], begin: str = BEGIN, end: str = END) -> None:
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin} ... {end} block to replace")
    a, rest = text.split(begin, 1)
    _, b = rest.split(end, 1)
    path.write_text(a + begin + "\n" + "\n".join(lines) + "\n" + end + b)


def ltr_section(ds: Dataset, seeds: list[int]) -> list[str]:
    """ltr_rerank at every seed (train protocol) beside EASE and lm_ease, and its ablation."""
    from fusionrec.models.composite.ltr_features import FEATURE_GROUPS

    res: dict[str, dict[int, tuple[float, float, str]]] = {}

    def put(label: str, seed: int, m: Recommender, sp: Any, chosen: str, s: float) -> None:
        v, t = EV.evaluate_split(m, sp, "valid")["ndcg@10"], EV.evaluate_split(m, sp)["ndcg@10"]
        res.setdefault(label, {})[seed] = (v, t, chosen)
        print(json.dumps({"section": "ltr", "seed": seed, "model": label, "chosen": chosen,
                          "valid": round(v, 4), "test": round(t, 4), "fit_s": round(s, 1)}), flush=True)

    # seed order: the full model first at every seed, then the ablation rows
    splits = {s: prepare(DataConfig(name=ds.name, protocol="rs"), s, ds).split for s in seeds}
    for seed, sp in splits.items():
        m, s = _fit("ease", {}, sp.train, sp.valid, seed)
        put("EASE (λ=250, RecBole's setting)", seed, m, sp, "-", s)
        m, s = _fit("lm_ease", {}, sp.train, sp.valid, seed)
        put("lm_ease (text)", seed, m, sp, f"cold_weight={m.cold_weight_:g}", s)
    for label, drop in LTR_ABLATION.items():
        groups = [g for g in FEATURE_GROUPS if g not in drop]
        for seed, sp in splits.items():
            m, s = _fit("ltr_rerank", {"features": groups}, sp.train, sp.valid, seed)
            put(label, seed, m, sp, f"{m.rounds_} trees", s)
    head = ["model", f"chosen on valid (seed {seeds[0]})", f"valid (seed {seeds[0]})"]
    head += [f"test, seed {s}" for s in seeds] + ["test mean"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, by_seed in res.items():
        tests = [by_seed[s][1] for s in seeds]
        first = by_seed[seeds[0]]
        lines.append("| " + " | ".join([label, first[2], f"{first[0]:.4f}", *(f"{t:.4f}" for t in tests),
                                        f"{np.mean(tests):.4f}"]) + " |")
    lines.append("")
    lines.append("Trees chosen on valid (early stopping) at seeds " + ", ".join(map(str, seeds)) + ": "
                 + "; ".join(f"{lb}: " + "/".join(by[s][2].split()[0] for s in seeds)
                             for lb, by in res.items() if lb.startswith("ltr")))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="2020,1,2")
    ap.add_argument("--no-refit", action="store_true", help="leave out the train+valid refit protocol")
    ap.add_argument("--no-cold", action="store_true", help="leave out the cold-item section")
    ap.add_argument("--write", type=Path, default=None, help="markdown file whose marked block gets the table")
    ap.add_argument("--ltr", action="store_true", help="run only the ltr_rerank section (and its ablation)")
    a = ap.parse_args()
    ds = load_dataset("ml-100k")
    seeds = [int(s) for s in a.seeds.split(",")]
    t0 = time.perf_counter()
    if a.ltr:
        lines = ["ml-100k, RS 8:1:1, full ranking, NDCG@10, `train` protocol (fitted on the training "
                 "split; valid only for early stopping).", "", *ltr_section(ds, seeds), "",
                 f"(`python benchmarks/quality_goals.py --ltr --seeds {a.seeds}`, "
                 f"{time.perf_counter() - t0:.0f} s wall on a shared 2-core machine)"]
        print("\n".join(lines))
        if a.write is not None:
            write(a.write, lines, LTR_BEGIN, LTR_END)
        return
    per_seed = {s: run_seed(ds, s, not a.no_refit) for s in seeds}
    lines = ["ml-100k, RS 8:1:1, full ranking, NDCG@10; `train` = fitted on the training split, "
             "`refit` = refitted on train+valid at the validation-chosen settings.", ""]
    lines += table(per_seed, not a.no_refit)
    if not a.no_cold:
        lines += ["", f"Cold-item protocol (10 % of items held out whole), split seed {seeds[0]}, test NDCG@10:", "",
                  "| model | NDCG@10 |", "|---|---|", *cold_section(ds, seeds[0])]
    lines += ["", f"(`python benchmarks/quality_goals.py --seeds {a.seeds}`, {time.perf_counter() - t0:.0f} s wall on a shared 2-core machine)"]
    print("\n".join(lines))
    if a.write is not None:
        write(a.write, lines)


if __name__ == "__main__":
    main()
