"""Fold-in: a user's new feedback moves their vector at request time (embedding models).

For a model whose scores are linear in a user vector p against fixed item factors V
(s_u = V p_u + terms that do not depend on p_u) the new feedback items N get a regularised
least-squares step on p with V fixed, anchored at the trained vector:

    Δp = argmin_Δ  Σ_{i∈N} (t − s_ui − V_i·Δ)²_+  +  λ‖Δ‖²
       = (V_Nᵀ V_N + λI)⁻¹ V_Nᵀ r,     r_i = max(t − s_ui, 0),

where the target t is the user's current best score (each feedback item is pulled up to the
level of the user's top recommendation; items already above it stay put) and λ = ``reg`` times
the mean squared norm of the feedback items' factors, so ``reg`` is scale-free. The new scores
are s_u + V Δp: items whose factors resemble the feedback's rise with them, so the next answer
reflects the feedback without a retrain. Nothing is stored: the service passes each user's
feedback items as ``histories`` and :func:`fusionrec.models.recommend.recommend_batch`
applies the step (the same one in the library and the HTTP API).

Models join by name in :data:`FOLDIN_FACTORS` (a function returning V) or by defining a
``foldin_item_factors()`` method returning V (n_items, d).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # no runtime import: recommend.py (imported by base.py) imports this module
    from fusionrec.models.base import Recommender

__all__ = ["DEFAULT_REG", "FOLDIN_FACTORS", "fold_in_delta", "fold_in_scores", "item_factors"]

DEFAULT_REG = 0.1


def _item_vectors(model: Recommender) -> np.ndarray:
    return np.asarray(model.item_vectors(), dtype=np.float64)


def _two_tower(model: Recommender) -> np.ndarray:
    import torch

    m = model.module_.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        idx = torch.arange(model.n_items, device=model.device_)  # type: ignore[attr-defined]
        return m.item(idx).double().cpu().numpy()  # the raw tower output, as score_tensor uses


#: model name -> the item factors V its scores are linear in (s_u = V p_u + ...).
FOLDIN_FACTORS: dict[str, Callable[[Recommender], np.ndarray]] = {
    "bpr": _item_vectors,
    "lightgcn": _item_vectors,
    "lm_lightgcn": _item_vectors,
    "lm_mf": _item_vectors,
    "cke": _item_vectors,
    "mm_mf": _item_vectors,
    "two_tower": _two_tower,
}


def item_factors(model: Recommender) -> np.ndarray | None:
    """V (n_items, d) for fold-in, or None when the model does not support it (cached)."""
    cached = model.__dict__.get("_foldin_factors_")
    if cached is not None:
        return cached
    fn = getattr(model, "foldin_item_factors", None)
    if fn is not None:
        v = np.asarray(fn(), dtype=np.float64)
    elif model.name in FOLDIN_FACTORS:
        v = FOLDIN_FACTORS[model.name](model)
    else:
        return None
    if v.shape[0] != model.n_items:
        raise ValueError(f"fold-in factors of {model.name!r} have {v.shape[0]} rows, not {model.n_items}")
    model.__dict__["_foldin_factors_"] = v
    return v


def fold_in_delta(
    factors: np.ndarray,
    scores: np.ndarray,
    items: np.ndarray,
    reg: float = DEFAULT_REG,
    target: float | None = None,
) -> np.ndarray:
    """Δp (d,) for one user: ``scores`` (n_items,) their current scores, ``items`` the new
    feedback item indices, ``target`` the score to pull them to (default: max of ``scores``)."""
    items = np.unique(np.asarray(items, dtype=np.int64))
    d = factors.shape[1]
    if len(items) == 0:
        return np.zeros(d)
    if reg < 0:
        raise ValueError(f"fold-in reg must be >= 0, got {reg}")
    n = factors[items]
    finite = scores[np.isfinite(scores)]
    t = float(finite.max()) if target is None else float(target)
    r = np.maximum(t - scores[items].astype(np.float64), 0.0)
    lam = reg * float(np.mean(np.sum(n * n, axis=1)))
    gram = n.T @ n + max(lam, 1e-12) * np.eye(d)
    return np.linalg.solve(gram, n.T @ r)


def fold_in_scores(
    model: Recommender, scores: np.ndarray, items: np.ndarray, reg: float = DEFAULT_REG
) -> np.ndarray | None:
    """The user's scores after folding in ``items`` (None: the model has no fold-in)."""
    v = item_factors(model)
    if v is None or len(items) == 0:
        return None
    delta = fold_in_delta(v, np.asarray(scores, dtype=np.float64), items, reg)
    return (np.asarray(scores, dtype=np.float64) + v @ delta).astype(np.float32)
