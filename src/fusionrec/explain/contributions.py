"""Contribution of each history item to a recommended item, through the base interface only.

Three methods, tried in order:

* ``history_scores`` – for models that score ad-hoc histories (``capabilities.cold_start_users``)
  and are item-based: the score of the target given the one-item history ``[h]`` minus its score
  given an empty history. For a linear item-item model (EASE, ItemKNN) this is exactly the
  item-item weight ``B[h, target]``; a model whose score ignores the history (Pop) gives all
  zeros and falls through to the next method.
* ``item_vectors`` – cosine of the model's item vectors.
* ``co_occurrence`` – cosine of the items' training user sets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from fusionrec.models.base import Recommender

__all__ = ["Explanation", "explain_item"]

_MAX_HISTORY = 200
_MAX_ITEMS_FOR_HISTORY_SCORES = 100_000


@dataclass
class Explanation:
    """Why ``item`` is recommended: contributing history items (index, weight) and shared features."""

    method: str
    contributions: list[tuple[int, float]]
    shared_features: dict[str, int] = field(default_factory=dict)


def explain_item(
    model: Recommender,
    history: np.ndarray,
    item: int,
    genres: list[list[str]] | None = None,
    top: int = 5,
) -> Explanation:
    """The ``top`` history items (indices into the model's items) that contributed most to ``item``."""
    history = np.asarray(history, dtype=np.int64)[-_MAX_HISTORY:]
    history = history[history != item]
    shared: dict[str, int] = {}
    if genres is not None and len(history):
        mine = set(genres[item])
        c: Counter[str] = Counter()
        for h in history:
            c.update(mine.intersection(genres[h]))
        shared = dict(c.most_common())
    if len(history) == 0:
        return Explanation("none", [], shared)
    weights, method = None, ""
    is_embedding = hasattr(model, "user_vectors")
    if (
        model.capabilities.cold_start_users
        and not is_embedding
        and model.n_items <= _MAX_ITEMS_FOR_HISTORY_SCORES
    ):
        try:
            base = float(np.asarray(model.score_histories([np.zeros(0, np.int64)]))[0, item])
            w = (
                np.concatenate(
                    [
                        np.asarray(model.score_histories([[h] for h in history[s : s + 64]]))[
                            :, item
                        ]
                        for s in range(0, len(history), 64)
                    ]
                )
                - base
            )
            if np.all(np.isfinite(w)) and np.any(w != 0):
                weights, method = w.astype(np.float64), "history_scores"
        except NotImplementedError:
            pass
    if weights is None:
        vec = model.item_vectors()
        if vec is not None:
            v = np.asarray(vec[np.concatenate([[item], history])], dtype=np.float64)
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            weights, method = v[1:] @ v[0], "item_vectors"
        else:
            x = model.seen_.T.tocsr().astype(np.float64)
            t = x[item]
            hx = x[history]
            dots = np.asarray((hx @ t.T).todense()).ravel()
            norms = np.sqrt(np.asarray(hx.multiply(hx).sum(1)).ravel()) * np.sqrt(
                t.multiply(t).sum()
            )
            weights, method = dots / np.maximum(norms, 1e-12), "co_occurrence"
    order = np.argsort(-weights, kind="stable")[:top]
    return Explanation(method, [(int(history[o]), float(weights[o])) for o in order], shared)
