"""What the service serves: a loaded model with its catalog and ANN index, and the answer logic.

A :class:`ModelState` is built completely (model, catalog, index) before the service swaps
its one reference to it, so a reload never shows a half-built model to a request.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError, ModelStateError, UnknownIdError
from fusionrec.models.base import Recommender, load_model
from fusionrec.ranking import topk
from fusionrec.rerank import mmr
from fusionrec.serving.ann import ANN_FILE, AnnIndex
from fusionrec.serving.catalog import Catalog

__all__ = [
    "ModelState",
    "RecAnswer",
    "recommend",
    "similar",
    "latest_version",
    "user_vectors_of",
]


def user_vectors_of(model: Recommender) -> np.ndarray | None:
    """The model's user vectors when it offers the optional ``user_vectors()`` protocol
    (``score[u, i] == user_vectors()[u] @ item_vectors()[i]``), else None."""
    fn = getattr(model, "user_vectors", None)
    if fn is None:
        return None
    u = fn()
    return None if u is None else np.asarray(u, dtype=np.float32)


@dataclass
class ModelState:
    """An immutable-by-convention bundle the routes read: model, version, catalog, ANN index."""

    model: Recommender
    version: str
    path: str | None
    loaded_at: float
    catalog: Catalog
    ann: AnnIndex | None = None
    user_vecs: np.ndarray | None = None
    item_norms: np.ndarray | None = None
    """L2 norms of the item vectors when an ANN index serves them (cosine re-ranking)."""

    @classmethod
    def from_model(
        cls,
        model: Recommender,
        version: str = "0",
        path: str | Path | None = None,
        dataset: Dataset | None = None,
        ann_threshold: int = 50_000,
        ann_kind: str = "ivf",
        ann_nprobe: int = 32,
        save_index: bool = True,
    ) -> ModelState:
        """Wrap a fitted model: catalog from ``path``/``dataset``, ANN index for embedding models."""
        if not getattr(model, "fitted_", False):
            raise ModelStateError("the service needs a fitted model")
        catalog = Catalog.load(
            model.items_, None if path is None else Path(path), dataset, model.item_titles_
        )
        ann, uv = None, user_vectors_of(model)
        iv = model.item_vectors() if uv is not None else None
        if uv is not None and iv is not None and model.n_items > ann_threshold:
            saved = None if path is None else Path(path) / ANN_FILE
            if saved is not None and saved.exists():
                ann = AnnIndex.load(saved, model.n_items, iv.shape[1], ann_nprobe)
            if ann is None:
                ann = AnnIndex.build(iv, threshold=ann_threshold, kind=ann_kind, nprobe=ann_nprobe)
                if saved is not None and save_index:
                    try:
                        ann.save(saved)
                    except OSError:  # a read-only model folder: keep the index in memory
                        pass
        norms = None
        if ann is not None and iv is not None:
            norms = np.linalg.norm(np.asarray(iv, dtype=np.float32), axis=1).astype(np.float32)
        return cls(
            model,
            version,
            None if path is None else str(path),
            time.time(),
            catalog,
            ann,
            uv,
            norms,
        )

    @classmethod
    def load(
        cls, path: str | Path, version: str | None = None, dataset: Dataset | None = None, **kw
    ) -> ModelState:
        path = Path(path)
        return cls.from_model(load_model(path), version or path.name, path, dataset, **kw)

    @property
    def name(self) -> str:
        return self.model.name


def _natural_key(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def latest_version(registry: str | Path) -> Path | None:
    """The newest complete version folder (holding config.json) of a registry, by natural sort."""
    reg = Path(registry)
    if not reg.is_dir():
        return None
    versions = [
        p
        for p in reg.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
    ]
    return max(versions, key=lambda p: _natural_key(p.name)) if versions else None


@dataclass
class RecAnswer:
    """Item indices with scores, best first; ``fallback`` when a fallback policy answered."""

    items: np.ndarray
    scores: np.ndarray
    fallback: bool
    strategy: str


def _known(state: ModelState, item_ids: list[str]) -> np.ndarray:
    if not item_ids:
        return np.zeros(0, np.int64)
    idx = state.model.items_.to_idx(np.asarray(item_ids, dtype=object), unknown="mask")
    return idx[idx >= 0]


def genre_mask(state: ModelState, genre: str | None) -> np.ndarray | None:
    if genre is None:
        return None
    m = state.catalog.genre_mask(genre)
    if m is None:
        known = ", ".join(state.catalog.genre_names[:30]) or "none (the model has no item catalog)"
        raise ConfigError(f"unknown genre {genre!r}; known genres: {known}")
    return m


def recommend(
    state: ModelState,
    user_id: str,
    k: int,
    exclude_seen: bool = True,
    genre: str | None = None,
    history: list[str] | None = None,
    event_items: list[str] | None = None,
    diversity: float = 0.0,
    ann_candidates: int = 200,
) -> RecAnswer:
    """Top-k for one user: the model for known users (feedback events excluded and, for models
    that score histories, folded into the history); history scoring, item-vector similarity or
    popularity for unknown users."""
    model = state.model
    allowed = genre_mask(state, genre)
    extra = (
        np.unique(np.concatenate([_known(state, history or []), _known(state, event_items or [])]))
        if history or event_items
        else np.zeros(0, np.int64)
    )
    uidx = int(model.users_.to_idx([user_id], unknown="mask")[0])
    fallback, strategy = False, "model"
    if uidx >= 0:
        train = model.seen_.indices[model.seen_.indptr[uidx] : model.seen_.indptr[uidx + 1]].astype(
            np.int64
        )
        seen = np.union1d(train, extra) if len(extra) else train
        if state.ann is not None and state.user_vecs is not None:
            got = _ann_answer(
                state, uidx, k, seen if exclude_seen else None, allowed, diversity, ann_candidates
            )
            if got is not None:
                return got
        if len(extra) and model.capabilities.cold_start_users and state.user_vecs is None:
            scores = np.asarray(model.score_histories([seen]), dtype=np.float32)[0].copy()
        else:
            scores = np.asarray(model.score_indices(np.array([uidx])), dtype=np.float32)[0].copy()
    else:
        seen = extra
        if len(extra) == 0:
            scores, fallback, strategy = model.item_pop_.astype(np.float32).copy(), True, "popular"
        elif model.capabilities.cold_start_users:
            scores, strategy = (
                np.asarray(model.score_histories([extra]), dtype=np.float32)[0].copy(),
                "history",
            )
        elif model.item_vectors() is not None:
            v = np.asarray(model.item_vectors(), dtype=np.float32)
            q = (
                v[extra] / np.maximum(np.linalg.norm(v[extra], axis=1, keepdims=True), 1e-12)
            ).mean(0)
            scores = (v @ q) / np.maximum(np.linalg.norm(v, axis=1), 1e-12)
            fallback, strategy = True, "content"
        else:
            scores, fallback, strategy = model.item_pop_.astype(np.float32).copy(), True, "popular"
    if exclude_seen and len(seen):
        scores[seen] = -np.inf
    if allowed is not None:
        scores[~allowed] = -np.inf
    idx, val = _pick(scores, k, diversity, model)
    return RecAnswer(idx, val, fallback, strategy)


def _pick(
    scores: np.ndarray, k: int, diversity: float, model: Recommender
) -> tuple[np.ndarray, np.ndarray]:
    vec = model.item_vectors() if diversity > 0 else None
    pool = max(k * 5, 50) if vec is not None else k
    idx, val = topk(scores[None, :], pool)
    idx, val = idx[0], val[0]
    ok = np.isfinite(val)
    idx, val = idx[ok], val[ok]
    if vec is not None and len(idx):
        pos = mmr(idx, val, vec, k, 1.0 - diversity)
        idx, val = idx[pos], val[pos]
    return idx[:k], val[:k]


def _ann_answer(
    state: ModelState,
    uidx: int,
    k: int,
    seen: np.ndarray | None,
    allowed: np.ndarray | None,
    diversity: float,
    n_cand: int,
) -> RecAnswer | None:
    """Candidates from the index, re-ranked by the model's exact scores; None if too few survive."""
    n = n_cand + (0 if seen is None else len(seen))
    if allowed is not None:
        share = max(float(allowed.mean()), 1e-6)
        n = int(min(n / share, 20 * n))
    cand, _ = state.ann.search(state.user_vecs[uidx], n)
    cand = cand[0]
    cand = cand[cand >= 0]
    if seen is not None and len(seen):
        if len(seen) <= 256:  # a broadcast compare beats np.isin's sort for short histories
            cand = cand[~(cand[:, None] == seen[None, :]).any(1)]
        else:
            cand = cand[~np.isin(cand, seen)]
    if allowed is not None:
        cand = cand[allowed[cand]]
    if len(cand) < k:
        return None
    exact = np.asarray(state.model.score_indices(np.array([uidx]), cand), dtype=np.float32)[0]
    order = np.argsort(-exact, kind="stable")
    cand, exact = cand[order], exact[order]
    if diversity > 0:
        pos = mmr(
            cand[: max(k * 5, 50)],
            exact[: max(k * 5, 50)],
            state.model.item_vectors(),
            k,
            1.0 - diversity,
        )
        cand, exact = cand[pos], exact[pos]
    return RecAnswer(cand[:k], exact[:k], False, "ann")


def similar(
    state: ModelState, iidx: int, k: int, ann_candidates: int = 200
) -> tuple[np.ndarray, np.ndarray, str]:
    """The k items most similar to item ``iidx`` by cosine of the item vectors, best first, and
    the strategy (``ann`` or ``exact``).

    With an ANN index the index proposes ``max(ann_candidates, k) + 1`` neighbours of the item's
    vector by inner product and they are re-ranked by exact cosine; without one (catalogs at or
    below the ANN threshold, or models without item vectors) the model's exact
    ``similar_items`` answers.
    """
    vec = state.model.item_vectors() if state.ann is not None else None
    if vec is None or state.item_norms is None:
        df = state.model.similar_items([state.model.items_.ids[iidx]], k)
        idx = state.model.items_.to_idx(df["similar_item_id"].to_numpy(dtype=object))
        return idx.astype(np.int64), df["score"].to_numpy(dtype=np.float32), "exact"
    q = np.asarray(vec[iidx], dtype=np.float32)
    cand, _ = state.ann.search(q, max(ann_candidates, k) + 1)
    cand = cand[0]
    cand = cand[(cand >= 0) & (cand != iidx)]
    norms = state.item_norms
    sims = (np.asarray(vec[cand], dtype=np.float32) @ q) / np.maximum(
        norms[cand] * norms[iidx], 1e-12
    )
    order = np.argsort(-sims, kind="stable")[:k]
    return cand[order], sims[order].astype(np.float32), "ann"


def check_item(state: ModelState, item_id: str) -> int:
    try:
        return state.model.items_.index(item_id)
    except UnknownIdError:
        raise UnknownIdError(f"unknown item {item_id!r}") from None
