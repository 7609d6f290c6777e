"""The one recommend path, shared by ``Recommender.recommend`` and the HTTP service.

:func:`recommend_batch` owns everything between a model's scores and a top-k list: seen-item
masking (training items plus any extra history such as feedback events), candidate and
item-feature (genre) filters, every fallback (popular items, history scoring, content
similarity of item vectors), optional candidate retrieval (the service's ANN index) with
exact re-ranking, and MMR diversity. It is batch-first on top of ``score_indices`` and
``score_histories``; the service adds only HTTP, auth, caching and events around it.

Which answer a user gets (``strategy``):

- ``model``: a user the model knows; scored by ``score_indices`` (or, when the request adds
  history and the model scores ad-hoc histories without user vectors, by ``score_histories``
  of training items plus that history);
- ``ann``: a known user whose candidates came from a :class:`Retriever`, re-ranked by the
  model's exact scores (too few surviving candidates fall back to exhaustive ``model``);
- ``history``: an unknown user with history, scored by ``score_histories``
  (``capabilities.cold_start_users``);
- ``content`` (fallback): an unknown user with history and a model without history scoring:
  cosine of the item vectors to the mean of the history's normalised vectors;
- ``popular`` (fallback): an unknown user without usable history (or a model with neither).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from fusionrec.errors import ConfigError, ModelStateError, UnknownIdError
from fusionrec.models.foldin import fold_in_scores
from fusionrec.ranking import mask_seen, topk
from fusionrec.rerank.mmr import mmr

if TYPE_CHECKING:
    from fusionrec.models.base import Recommender

__all__ = [
    "Recommendation",
    "Retriever",
    "recommend_batch",
    "item_filter",
    "user_vectors_of",
    "has_user_vectors",
    "STRATEGIES",
]

STRATEGIES = ("model", "ann", "history", "content", "popular")


@dataclass(frozen=True)
class Recommendation:
    """One user's answer: item indices and scores, best first (every score finite)."""

    items: np.ndarray
    scores: np.ndarray
    fallback: bool
    """True when a fallback policy (``popular`` or ``content``) answered instead of the model."""
    strategy: str
    """One of :data:`STRATEGIES`."""


class Retriever(Protocol):
    """Proposes candidate items for a known user (e.g. an ANN index over item vectors)."""

    def retrieve(self, user_idx: int, n: int) -> np.ndarray:
        """Up to ``n`` item indices, best first; -1 or out-of-range entries are ignored."""
        ...


def has_user_vectors(model: Recommender) -> bool:
    """Whether the model offers the optional ``user_vectors`` protocol
    (``score[u, i] == user_vectors[u] @ item_vectors()[i]``)."""
    return callable(getattr(model, "user_vectors", None))


def user_vectors_of(model: Recommender) -> np.ndarray | None:
    """All user vectors ``(n_users, d)`` of a model with the ``user_vectors`` protocol, else None.

    Both forms of the protocol are accepted: ``user_vectors()`` returning every user's vector
    and ``user_vectors(user_idx)`` returning those of the given users (``two_tower``)."""
    fn = getattr(model, "user_vectors", None)
    if not callable(fn):
        return None
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    u = fn(np.arange(model.n_users, dtype=np.int64)) if params else fn()
    return None if u is None else np.asarray(u, dtype=np.float32)


def item_filter(
    n_items: int, candidates: np.ndarray | None = None, allowed: np.ndarray | None = None
) -> np.ndarray | None:
    """One boolean mask over items from candidate indices and/or an allowed-items mask (None: all)."""
    mask = None
    if candidates is not None:
        cand = np.asarray(candidates, dtype=np.int64)
        if len(cand) and (cand.min() < 0 or cand.max() >= n_items):
            raise ConfigError(f"candidate item indices must lie in [0, {n_items})")
        mask = np.zeros(n_items, dtype=bool)
        mask[cand] = True
    if allowed is not None:
        allowed = np.asarray(allowed)
        if allowed.dtype != bool or allowed.shape != (n_items,):
            raise ConfigError(
                f"an item filter must be a boolean mask of shape ({n_items},), got "
                f"{allowed.dtype} of shape {allowed.shape}"
            )
        mask = allowed.copy() if mask is None else mask & allowed
    return mask


def _history_idx(model: Recommender, history: Sequence[object] | None) -> np.ndarray:
    """Known item indices of ``history`` (unknown ids are ignored), unique and sorted."""
    if history is None or len(history) == 0:
        return np.zeros(0, np.int64)
    idx = model.items_.to_idx(np.asarray(list(history), dtype=object), unknown="mask")
    return np.unique(idx[idx >= 0])


def _train_items(model: Recommender, u: int) -> np.ndarray:
    s = model.seen_
    return s.indices[s.indptr[u] : s.indptr[u + 1]].astype(np.int64)


class _Vectors:
    """Item vectors fetched once per call, only when a strategy needs them."""

    def __init__(self, model: Recommender, given: np.ndarray | None) -> None:
        self._model, self._v, self._done = model, given, given is not None

    def get(self) -> np.ndarray | None:
        if not self._done:
            v = self._model.item_vectors()
            self._v = None if v is None else np.asarray(v, dtype=np.float32)
            self._done = True
        return self._v


def recommend_batch(
    model: Recommender,
    users: Sequence[object] | np.ndarray,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    candidates: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    histories: Sequence[Sequence[object] | None] | None = None,
    diversity: float = 0.0,
    retriever: Retriever | None = None,
    retrieve_n: int = 200,
    item_vectors: np.ndarray | None = None,
    unknown: Literal["popular", "raise"] = "popular",
    batch_size: int = 1024,
) -> list[Recommendation]:
    """Top-k per user (external ids), one :class:`Recommendation` each, in the order given.

    ``candidates`` (item indices) and ``allowed`` (boolean mask over items, e.g. a genre
    filter) restrict what may be recommended; ``histories`` (one list of external item ids per
    user, or None) adds items the user interacted with outside the training data (feedback
    events, an anonymous session): they are excluded with ``exclude_seen`` and drive the
    fallbacks of unknown users. ``diversity`` in [0, 1] re-ranks a pool of ``max(5k, 50)``
    by maximal marginal relevance over the item vectors (models without item vectors keep
    the relevance order). ``retriever`` proposes ``retrieve_n`` candidates for known users
    (plus room for masked ones) that are then re-ranked by the exact scores.
    ``item_vectors`` may pass the model's item vectors when the caller holds them already.
    """
    model._require_fitted()
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not 0.0 <= float(diversity) <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    users = [str(u) for u in np.atleast_1d(np.asarray(users, dtype=object)).tolist()]
    if histories is not None and len(histories) != len(users):
        raise ValueError(f"{len(histories)} histories for {len(users)} users")
    n_items = model.n_items
    mask = item_filter(n_items, candidates, allowed)
    uidx = model.users_.to_idx(np.asarray(users, dtype=object), unknown="mask")
    if unknown == "raise" and (uidx < 0).any():
        raise UnknownIdError(f"unknown user {users[int(np.flatnonzero(uidx < 0)[0])]!r}")
    extra = [
        _history_idx(model, None if histories is None else histories[n]) for n in range(len(users))
    ]
    vectors = _Vectors(model, item_vectors)
    pool = max(k * 5, 50) if diversity > 0 else k
    out: list[Recommendation | None] = [None] * len(users)

    def finish(n: int, scores: np.ndarray, fallback: bool, strategy: str) -> None:
        """Mask, filter, pick and re-rank one user's full score row (modified in place)."""
        if exclude_seen and len(extra[n]):
            scores[extra[n]] = -np.inf
        if mask is not None:
            scores[~mask] = -np.inf
        idx, val = topk(scores[None, :], pool)
        out[n] = _pick(idx[0], val[0], k, diversity, vectors, fallback, strategy)

    # known users: the retriever first, then exhaustive scoring in batches
    by_scores: list[int] = []
    by_history: list[int] = []
    for n in np.flatnonzero(uidx >= 0).tolist():
        if retriever is not None:
            got = _retrieved(
                model,
                retriever,
                int(uidx[n]),
                k,
                exclude_seen,
                extra[n],
                mask,
                retrieve_n,
                diversity,
                vectors,
            )
            if got is not None:
                out[n] = got
                continue
        if len(extra[n]) and model.capabilities.cold_start_users and not has_user_vectors(model):
            by_history.append(n)
        else:
            by_scores.append(n)
    for s in range(0, len(by_scores), batch_size):
        rows = by_scores[s : s + batch_size]
        ui = uidx[rows]
        sc = np.array(model.score_indices(ui), dtype=np.float32, copy=True)
        _check_shape(model, sc, len(rows))
        if exclude_seen:
            mask_seen(sc, ui, model.seen_)
        for r, n in enumerate(rows):
            # embedding models: the feedback items move the user's vector (models/foldin.py)
            folded = fold_in_scores(model, sc[r], extra[n]) if len(extra[n]) else None
            finish(n, sc[r] if folded is None else folded, False, "model")
    for s in range(0, len(by_history), batch_size):
        rows = by_history[s : s + batch_size]
        hist = [np.union1d(_train_items(model, int(uidx[n])), extra[n]) for n in rows]
        sc = np.array(model.score_histories(hist), dtype=np.float32, copy=True)
        _check_shape(model, sc, len(rows))
        for r, n in enumerate(rows):
            if exclude_seen:
                sc[r, hist[r]] = -np.inf
            finish(n, sc[r], False, "model")

    # unknown users: history scoring, content similarity, or the most popular items
    unknown_rows = np.flatnonzero(uidx < 0).tolist()
    cold = [n for n in unknown_rows if len(extra[n])]
    cold_history = cold if model.capabilities.cold_start_users else []
    for s in range(0, len(cold_history), batch_size):
        rows = cold_history[s : s + batch_size]
        sc = np.array(model.score_histories([extra[n] for n in rows]), dtype=np.float32, copy=True)
        _check_shape(model, sc, len(rows))
        for r, n in enumerate(rows):
            finish(n, sc[r], False, "history")
    scored = set(cold_history)
    popular = [n for n in unknown_rows if n not in scored]
    pop_scores = np.asarray(model.item_pop_, dtype=np.float32)
    for n in popular:
        v = vectors.get() if len(extra[n]) else None
        if v is not None:
            h = v[extra[n]]
            q = (h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)).mean(0)
            sc = (v @ q) / np.maximum(np.linalg.norm(v, axis=1), 1e-12)
            finish(n, np.asarray(sc, dtype=np.float32), True, "content")
        else:
            finish(n, pop_scores.copy(), True, "popular")
    return [r for r in out if r is not None]


def _check_shape(model: Recommender, scores: np.ndarray, n_rows: int) -> None:
    if scores.shape != (n_rows, model.n_items):
        raise ModelStateError(
            f"model {model.name!r} scored shape {scores.shape}, expected ({n_rows}, {model.n_items}): "
            "its state does not match its item ids"
        )


def _pick(
    idx: np.ndarray,
    val: np.ndarray,
    k: int,
    diversity: float,
    vectors: _Vectors,
    fallback: bool,
    strategy: str,
) -> Recommendation:
    ok = np.isfinite(val)
    idx, val = idx[ok], val[ok]
    v = vectors.get() if diversity > 0 and len(idx) else None
    if v is not None:
        pos = mmr(idx, val, v, k, 1.0 - float(diversity))
        idx, val = idx[pos], val[pos]
    return Recommendation(idx[:k].astype(np.int64), val[:k].astype(np.float32), fallback, strategy)


def _retrieved(
    model: Recommender,
    retriever: Retriever,
    u: int,
    k: int,
    exclude_seen: bool,
    extra: np.ndarray,
    mask: np.ndarray | None,
    n_cand: int,
    diversity: float,
    vectors: _Vectors,
) -> Recommendation | None:
    """Candidates from the retriever, masked and filtered, re-ranked by the model's exact
    scores; None when fewer than ``k`` survive (the caller then scores every item)."""
    seen = np.union1d(_train_items(model, u), extra) if exclude_seen else np.zeros(0, np.int64)
    n = n_cand + len(seen)
    if mask is not None:
        share = max(float(mask.mean()), 1e-6)
        n = int(min(n / share, 20 * n))
    cand = np.asarray(retriever.retrieve(u, n), dtype=np.int64).ravel()
    cand = cand[(cand >= 0) & (cand < model.n_items)]
    _, first = np.unique(cand, return_index=True)
    cand = cand[np.sort(first)]
    if len(seen):
        if len(seen) <= 256:  # a broadcast compare beats np.isin's sort for short histories
            cand = cand[~(cand[:, None] == seen[None, :]).any(1)]
        else:
            cand = cand[~np.isin(cand, seen)]
    if mask is not None:
        cand = cand[mask[cand]]
    if len(cand) < k:
        return None
    exact = np.asarray(model.score_indices(np.array([u]), cand), dtype=np.float32)[0]
    order = np.argsort(-exact, kind="stable")
    cand, exact = cand[order], exact[order]
    pool = max(k * 5, 50) if diversity > 0 else k
    return _pick(cand[:pool], exact[:pool], k, diversity, vectors, False, "ann")
