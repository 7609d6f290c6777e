"""Model-agnostic leave-one-out contributions of a user's history items to an item's score.

``contribution(h) = score(item | H) - score(item | H without h)``.

* Models that score ad-hoc histories (``score_histories``: EASE, ItemKNN, SASRec, text models)
  are asked directly: the contributions are exact for the model itself (method
  ``leave_one_out``). One batched call scores H and every H \\ {h}.
* Other models with item vectors (BPR, LightGCN, NeuMF, CKE, KGAT, two-tower, ...) cannot
  re-score a changed history without refitting, so the user is *folded in*: the user vector
  that best reproduces the history from the model's own item vectors,
  ``u(H) = argmin_u Σ_{i∈H} (1 - u·v_i)² + λ|u|²``, is refitted without each h in closed form
  (a rank-one downdate), and the contribution is the drop of ``u·v_item`` (method
  ``fold_in``). The surrogate is the model's item geometry, not the model's exact score.
"""

from __future__ import annotations

import numpy as np

from fusionrec.explain.contributions import Explanation

__all__ = ["leave_one_out", "loo_weights", "fold_in_user", "FOLD_IN_REG"]

#: Ridge λ of the fold-in user vector (relative to the mean squared item-vector norm).
FOLD_IN_REG = 0.1
_MAX_HISTORY = 200


def _history_scorer(model: object) -> bool:
    try:
        model.score_histories([np.zeros(0, np.int64)])  # type: ignore[attr-defined]
    except (NotImplementedError, AttributeError):
        return False
    return True


def _exact(model: object, history: np.ndarray, item: int) -> np.ndarray:
    hs = [history] + [np.delete(history, j) for j in range(len(history))]
    out = []
    for s in range(0, len(hs), 64):
        sc = np.asarray(model.score_histories(hs[s : s + 64]))  # type: ignore[attr-defined]
        out.append(sc[:, item].astype(np.float64))
    col = np.concatenate(out)
    return col[0] - col[1:]


def _ridge(v: np.ndarray, reg: float) -> float:
    return reg * max(float((v * v).sum(1).mean()), 1e-12)


def fold_in_user(vectors: np.ndarray, history: np.ndarray, reg: float = FOLD_IN_REG) -> np.ndarray:
    """The user vector u(H) = argmin Σ_{i∈H} (1 - u·v_i)² + λ|u|² (zeros for an empty H)."""
    v = np.asarray(vectors, dtype=np.float64)
    vh = v[np.asarray(history, dtype=np.int64)]
    if len(vh) == 0:
        return np.zeros(v.shape[1])
    return np.linalg.solve(vh.T @ vh + _ridge(v, reg) * np.eye(v.shape[1]), vh.sum(0))


def _fold_in(vectors: np.ndarray, history: np.ndarray, item: int, reg: float = FOLD_IN_REG) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    vh = v[history]  # (n, d)
    a = vh.T @ vh + _ridge(v, reg) * np.eye(v.shape[1])
    b = vh.sum(0)
    a_inv = np.linalg.inv(a)
    u = a_inv @ b
    t = v[item]
    full = float(u @ t)
    # without h: (A - v vᵀ)⁻¹ by Sherman-Morrison, b - v
    av = vh @ a_inv  # rows: A⁻¹ v_h (A symmetric)
    denom = 1.0 - (av * vh).sum(1)
    b_h = b[None, :] - vh
    x = b_h @ a_inv  # A⁻¹ b_h
    u_h = x + av * ((x * vh).sum(1) / np.where(np.abs(denom) > 1e-12, denom, 1e-12))[:, None]
    return full - u_h @ t


def loo_weights(
    model: object, history: np.ndarray, item: int, vectors: np.ndarray | None = None
) -> tuple[np.ndarray, str]:
    """(contribution per history item, method); see the module docstring. ``vectors``: the
    model's item vectors when the caller has them already (fold-in only)."""
    history = np.asarray(history, dtype=np.int64)
    if len(history) == 0:
        return np.zeros(0), "none"
    if vectors is None and _history_scorer(model):
        return _exact(model, history, item), "leave_one_out"
    vec = vectors if vectors is not None else (model.item_vectors() if hasattr(model, "item_vectors") else None)
    if vec is None:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(f"model {name!r} neither scores histories nor has item vectors: no leave-one-out")
    return _fold_in(np.asarray(vec), history, item), "fold_in"


def leave_one_out(model: object, history: np.ndarray, item: int, top: int = 5) -> Explanation:
    """The ``top`` history items whose removal lowers ``item``'s score most (most recent
    ``_MAX_HISTORY`` items; the item itself is left out of its own history)."""
    history = np.asarray(history, dtype=np.int64)[-_MAX_HISTORY:]
    history = history[history != item]
    w, method = loo_weights(model, history, item)
    order = np.argsort(-w, kind="stable")[:top]
    return Explanation(method, [(int(history[o]), float(w[o])) for o in order])
