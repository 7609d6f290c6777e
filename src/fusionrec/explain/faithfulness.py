"""Faithfulness of history-item explanations, measured over many users.

For each sampled user with at least ``min_history`` training items: the target is the model's
top recommendation given the user's history; the explainer names its top contributing history
item; the score of the target is recomputed with that item removed, and with a random other
history item removed. A faithful explainer's top item lowers the score more. Scores come from
``score_histories`` when the model has it (the model itself), else from the fold-in surrogate
of ``leave_one_out`` (the model's item vectors; labelled so in the report).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from fusionrec.explain.leave_one_out import _history_scorer, fold_in_user, loo_weights

__all__ = ["FaithfulnessReport", "faithfulness", "EXPLAINERS"]


@dataclass
class FaithfulnessReport:
    explainer: str
    scorer: str  # "model" (score_histories) or "fold_in"
    n_users: int
    mean_drop_top: float
    mean_drop_random: float
    share_top_beats_random: float  # users where removing the top item lowers the score more (ties: half)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _scores(model: object, histories: list[np.ndarray], item: int, exact: bool, vectors: np.ndarray | None) -> np.ndarray:
    """The target's score given each history: the model's own, or the fold-in surrogate's."""
    if exact:
        return np.asarray(model.score_histories(histories))[:, item].astype(np.float64)  # type: ignore[attr-defined]
    assert vectors is not None
    v = np.asarray(vectors, dtype=np.float64)
    return np.array([float(fold_in_user(v, h) @ v[item]) for h in histories])


Explainer = Callable[[object, np.ndarray, int, "np.ndarray | None"], np.ndarray]


def _loo_explainer(model: object, history: np.ndarray, item: int, vectors: np.ndarray | None) -> np.ndarray:
    return loo_weights(model, history, item, vectors)[0]


def _attention_explainer(model: object, history: np.ndarray, item: int, vectors: np.ndarray | None) -> np.ndarray:
    from fusionrec.explain.attention import attention_weights

    seen, w = attention_weights(model, history)
    out = np.full(len(history), -np.inf)
    out[len(history) - len(seen) :] = w
    return out


def _cosine_explainer(model: object, history: np.ndarray, item: int, vectors: np.ndarray | None) -> np.ndarray:
    v = np.asarray(model.item_vectors() if vectors is None else vectors, dtype=np.float64)  # type: ignore[attr-defined]
    x = v[np.concatenate([[item], history])]
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x[1:] @ x[0]


EXPLAINERS: dict[str, Explainer] = {
    "leave_one_out": _loo_explainer,
    "attention": _attention_explainer,
    "item_vectors": _cosine_explainer,
}


def faithfulness(
    model: object,
    train: sp.csr_matrix,
    explainer: str = "leave_one_out",
    n_users: int = 200,
    min_history: int = 5,
    max_history: int = 50,
    seed: int = 0,
    histories: list[np.ndarray] | None = None,
) -> FaithfulnessReport:
    """Top-contributor vs random-item removal over ``n_users`` sampled users.

    ``train``: the training matrix (histories, unless ``histories`` gives time-ordered ones per
    user index, as SASRec needs); histories are cut to their ``max_history`` most recent items.
    """
    if explainer not in EXPLAINERS:
        raise ValueError(f"unknown explainer {explainer!r}; known: {', '.join(EXPLAINERS)}")
    rng = np.random.default_rng(seed)
    exact = _history_scorer(model)
    vectors = model.item_vectors() if hasattr(model, "item_vectors") else None  # once: may be costly (LightGCN)
    if not exact and vectors is None:
        raise ValueError("model neither scores histories nor has item vectors")
    counts = np.diff(train.indptr)
    pool = np.flatnonzero(counts >= min_history)
    users = rng.choice(pool, size=min(n_users, len(pool)), replace=False) if len(pool) else pool
    fn = EXPLAINERS[explainer]
    d_top, d_rand, wins = [], [], []
    for u in users:
        h = histories[u] if histories is not None else train.indices[train.indptr[u] : train.indptr[u + 1]]
        h = np.asarray(h, dtype=np.int64)[-max_history:]
        if exact:
            full = np.array(model.score_histories([h])[0], dtype=np.float64)  # type: ignore[attr-defined]
        else:
            vv = np.asarray(vectors, dtype=np.float64)
            full = vv @ fold_in_user(vv, h)
        full[h] = -np.inf
        target = int(np.argmax(full))
        # exact models explain with their own scores; the others with the cached vectors
        w = fn(model, h, target, None if exact and explainer == "leave_one_out" else vectors)
        top = int(np.argmax(w))
        others = np.delete(np.arange(len(h)), top)
        rnd = int(rng.choice(others))
        s = _scores(model, [h, np.delete(h, top), np.delete(h, rnd)], target, exact, vectors)
        dt, dr = s[0] - s[1], s[0] - s[2]
        d_top.append(dt)
        d_rand.append(dr)
        wins.append(1.0 if dt > dr else 0.5 if dt == dr else 0.0)
    n = len(d_top)
    nan = float("nan")
    return FaithfulnessReport(
        explainer=explainer,
        scorer="model" if exact else "fold_in",
        n_users=n,
        mean_drop_top=float(np.mean(d_top)) if n else nan,
        mean_drop_random=float(np.mean(d_rand)) if n else nan,
        share_top_beats_random=float(np.mean(wins)) if n else nan,
    )
