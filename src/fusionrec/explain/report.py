"""One explanation of (user, item) for any model: every method that applies, as plain data
(external ids, titles) for the CLI, the API and the web page.

Sections: ``contributions`` (leave-one-out, any model), ``attention`` (SASRec family),
``kg_paths`` (when a knowledge graph is given; attention-weighted for KGAT), ``features``
(Integrated Gradients for deepfm / two_tower, when captum is installed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionrec.data.dataset import KnowledgeGraph
from fusionrec.explain.attention import _is_sasrec, explain_attention
from fusionrec.explain.attributions import integrated_gradients, supports_feature_attribution
from fusionrec.explain.kg_paths import kg_paths
from fusionrec.explain.leave_one_out import leave_one_out

__all__ = ["explain_recommendation", "SECTIONS"]

SECTIONS = ("contributions", "attention", "kg_paths", "features")


def _item(model: Any, i: int, weight: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"item_id": str(model.items_.ids[i])}
    titles = getattr(model, "item_titles_", None)
    if titles is not None:
        out["title"] = str(titles[i])
    if weight is not None:
        out["weight"] = float(weight)
    return out


def explain_recommendation(
    model: Any,
    user_idx: int | None,
    item_idx: int,
    history: np.ndarray | None = None,
    kg: KnowledgeGraph | None = None,
    top: int = 5,
    sections: tuple[str, ...] = SECTIONS,
    max_hops: int = 2,
) -> dict[str, Any]:
    """Why ``model`` scores ``item_idx`` for ``user_idx`` (or for an ad-hoc ``history``).

    ``history`` defaults to the user's training items (time-ordered for sequential models when
    the model keeps them). Sections that do not apply to the model are left out; ``skipped``
    says why."""
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise ValueError(f"unknown explanation sections {bad}; known: {', '.join(SECTIONS)}")
    if not 0 <= int(item_idx) < model.n_items:
        raise ValueError(f"item index {item_idx} outside 0..{model.n_items - 1}")
    if history is None:
        if user_idx is None:
            raise ValueError("give a user or a history")
        hist_attr = getattr(model, "hist_", None)
        if hist_attr is not None and _is_sasrec(model):  # SASRec keeps time-ordered histories (item + 1, 0 = pad)
            row = np.asarray(hist_attr[int(user_idx)])
            history = row[row > 0] - 1
        else:
            seen = model.seen_
            history = seen.indices[seen.indptr[int(user_idx)] : seen.indptr[int(user_idx) + 1]]
    history = np.asarray(history, dtype=np.int64)
    out: dict[str, Any] = {"model": model.name, "item": _item(model, int(item_idx)), "history_size": len(history)}
    if user_idx is not None:
        out["user_id"] = str(model.users_.ids[int(user_idx)])
        out["score"] = float(np.asarray(model.score_indices(np.array([int(user_idx)]), np.array([int(item_idx)])))[0, 0])
    skipped: dict[str, str] = {}
    if "contributions" in sections:
        try:
            ex = leave_one_out(model, history, int(item_idx), top)
            out["contributions"] = {"method": ex.method, "items": [_item(model, i, w) for i, w in ex.contributions]}
        except ValueError as e:
            skipped["contributions"] = str(e)
    if "attention" in sections:
        if _is_sasrec(model):
            ex = explain_attention(model, history, top)
            out["attention"] = {"method": ex.method, "items": [_item(model, i, w) for i, w in ex.contributions]}
        else:
            skipped["attention"] = f"{model.name} has no attention over the history"
    if "kg_paths" in sections:
        if kg is None:
            skipped["kg_paths"] = "no knowledge graph given"
        else:
            paths = kg_paths(kg, history, int(item_idx), model, max_hops, top)
            names = [str(x) for x in kg.entities.ids]
            titles = getattr(model, "item_titles_", None)
            item_names = None
            if titles is not None:
                item_names = {int(i): str(titles[i]) for i in {p.history_item for p in paths} | {int(item_idx)}}
            out["kg_paths"] = [
                {
                    "from": _item(model, p.history_item),
                    "entities": [names[n] for n in p.nodes],
                    "relations": list(p.relations),
                    "weight": p.weight,
                    "text": p.describe(names, item_names),
                }
                for p in paths
            ]
    if "features" in sections:
        if user_idx is None:
            skipped["features"] = "feature attributions need a known user"
        elif not supports_feature_attribution(model):
            skipped["features"] = f"{model.name} has no field inputs (deepfm, two_tower)"
        else:
            try:
                fa = integrated_gradients(model, int(user_idx), int(item_idx))
                out["features"] = {
                    "method": fa.method,
                    "score": fa.score,
                    "baseline_score": fa.baseline_score,
                    "delta": fa.delta,
                    "fields": [{"field": n, "attribution": v} for n, v in fa.fields],
                }
            except ImportError as e:
                skipped["features"] = str(e)
    if skipped:
        out["skipped"] = skipped
    return out
