"""What the service serves: a loaded model with its catalog and ANN index, and the answer logic.

A :class:`ModelState` is built completely (model, catalog, index) and validated (folder
structure, a smoke recommend for a known and an unknown user) before the service swaps its
one reference to it, so a reload never shows a half-built or broken model to a request.
Recommending is the library's one path (:func:`fusionrec.models.recommend.recommend_batch`):
this module only turns a request into its arguments (genre mask from the catalogue, feedback
items as history, the ANN index as retriever).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError, FusionRecError, ModelStateError, UnknownIdError
from fusionrec.models.base import Recommender, load_model
from fusionrec.models.folder import smoke_check
from fusionrec.models.recommend import Recommendation, recommend_batch, user_vectors_of
from fusionrec.serving.ann import ANN_FILE, AnnIndex, load_or_build
from fusionrec.serving.catalog import Catalog
from fusionrec.serving.shared_arrays import map_model_arrays

__all__ = [
    "ModelState",
    "RecAnswer",
    "AnnRetriever",
    "recommend",
    "similar",
    "latest_version",
    "user_vectors_of",
    "validate_state",
]

RecAnswer = Recommendation
"""What :func:`recommend` returns (the library's :class:`Recommendation`)."""


class AnnRetriever:
    """The ANN index as the library's :class:`~fusionrec.models.recommend.Retriever`."""

    def __init__(self, ann: AnnIndex, user_vecs: np.ndarray) -> None:
        self.ann, self.user_vecs = ann, user_vecs

    def retrieve(self, user_idx: int, n: int) -> np.ndarray:
        return self.ann.search(self.user_vecs[user_idx], n)[0][0]


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
    item_vecs: np.ndarray | None = None
    """The model's item vectors, fetched once at load (MMR diversity, content fallback, ANN)."""

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
        validate: bool = True,
        ann: bool = False,
        ann_mmap: bool = True,
    ) -> ModelState:
        """Wrap a fitted model: catalog from ``path``/``dataset``, ANN index for embedding models.

        A model with user and item vectors (``score = user_vectors @ item_vectors.T``) gets an
        approximate index of ``ann_kind`` when it has more than ``ann_threshold`` items, or
        whatever its size with ``ann``; a saved ``ann.faiss`` is read memory-mapped with
        ``ann_mmap`` (shared by worker processes). With ``validate`` the state is checked
        (:func:`validate_state`) before it is returned."""
        if not getattr(model, "fitted_", False):
            raise ModelStateError("the service needs a fitted model")
        catalog = Catalog.load(
            model.items_, None if path is None else Path(path), dataset, model.item_titles_
        )
        iv = model.item_vectors()
        iv = None if iv is None else np.asarray(iv, dtype=np.float32)
        if iv is not None and iv.shape[0] != model.n_items:
            raise ModelStateError(
                f"{path or 'the model'}: {iv.shape[0]} item vectors for {model.n_items} items"
            )
        uv = None
        if iv is not None and (ann or model.n_items > ann_threshold):
            uv = user_vectors_of(model)
            if uv is not None and uv.shape != (model.n_users, iv.shape[1]):
                raise ModelStateError(
                    f"{path or 'the model'}: user vectors of shape {uv.shape}, expected "
                    f"({model.n_users}, {iv.shape[1]})"
                )
        index = None
        if uv is not None and iv is not None:
            index = load_or_build(
                iv,
                None if path is None else Path(path) / ANN_FILE,
                threshold=0 if ann else ann_threshold,
                kind=ann_kind,
                nprobe=ann_nprobe,
                save=save_index,
                mmap=ann_mmap,
            )
        norms = None
        if index is not None and iv is not None:
            norms = np.linalg.norm(iv, axis=1).astype(np.float32)
        state = cls(
            model,
            version,
            None if path is None else str(path),
            time.time(),
            catalog,
            index,
            uv,
            norms,
            iv,
        )
        if validate:
            validate_state(state)
        return state

    @classmethod
    def load(
        cls,
        path: str | Path,
        version: str | None = None,
        dataset: Dataset | None = None,
        mmap: bool = False,
        **kw,
    ) -> ModelState:
        """Load the folder; with ``mmap`` the model's arrays are copy-on-write maps of its
        state file (shared by the worker processes serving it: ``serving/shared_arrays.py``)."""
        path = Path(path)
        model = load_model(path)
        if mmap:
            map_model_arrays(model, path)
        return cls.from_model(model, version or path.name, path, dataset, **kw)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def retriever(self) -> AnnRetriever | None:
        if self.ann is None or self.user_vecs is None:
            return None
        return AnnRetriever(self.ann, self.user_vecs)


def validate_state(state: ModelState) -> None:
    """Refuse a state that would fail requests: scores of the wrong shape or NaN, and a smoke
    recommend (a known user, an unknown one, an unknown one with history) that must return
    item indices inside the catalogue. Raises ModelStateError with the reason."""
    model = state.model
    where = state.path or f"model {model.name!r}"
    smoke_check(model, state.path)
    probe = "\x00fusionrec-smoke-test"  # never a real id: the schema refuses control characters
    k = min(10, model.n_items)
    try:
        answers = recommend_batch(
            model,
            [str(model.users_.ids[0]), probe, probe],
            k,
            histories=[None, None, [str(model.items_.ids[0])]],
            retriever=state.retriever,
            item_vectors=state.item_vecs,
        )
    except FusionRecError as e:
        raise ModelStateError(f"{where}: smoke recommend failed: {e}") from None
    except Exception as e:  # anything a broken state raises: refuse the version, with the reason
        raise ModelStateError(
            f"{where}: smoke recommend failed ({type(e).__name__}: {e})"
        ) from None
    for a in answers:
        if len(a.items) and (a.items.min() < 0 or a.items.max() >= model.n_items):
            raise ModelStateError(f"{where}: smoke recommend returned item indices out of range")
        if not np.isfinite(a.scores).all():
            raise ModelStateError(f"{where}: smoke recommend returned non-finite scores")


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


def genre_mask(state: ModelState, genre: str | None) -> np.ndarray | None:
    """The catalogue's items of ``genre`` (None: no filter); UnknownIdError (404 in the
    service) naming the known genres when no item has it."""
    if genre is None:
        return None
    try:
        return state.catalog.index.mask(genre)
    except ConfigError as e:
        raise UnknownIdError(str(e)) from None


def _known(state: ModelState, item_ids: list[str]) -> np.ndarray:
    if not item_ids:
        return np.zeros(0, np.int64)
    idx = state.model.items_.to_idx(np.asarray(item_ids, dtype=object), unknown="mask")
    return idx[idx >= 0]


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
) -> Recommendation:
    """Top-k for one user through the library's one recommend path: the request's history and
    the user's feedback items are the extra history, the genre is an item filter, and the ANN
    index (when the state has one) retrieves candidates for known users."""
    extra = list(dict.fromkeys([*(history or ()), *(event_items or ())]))
    return recommend_batch(
        state.model,
        [user_id],
        k,
        exclude_seen=exclude_seen,
        allowed=genre_mask(state, genre),
        histories=[extra],
        diversity=diversity,
        retriever=state.retriever,
        retrieve_n=ann_candidates,
        item_vectors=state.item_vecs,
    )[0]


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
    vec = state.item_vecs if state.ann is not None else None
    if vec is None or state.item_norms is None:
        df = state.model.similar_items([state.model.items_.ids[iidx]], k)
        idx = state.model.items_.to_idx(df["similar_item_id"].to_numpy(dtype=object))
        return idx.astype(np.int64), df["score"].to_numpy(dtype=np.float32), "exact"
    q = np.asarray(vec[iidx], dtype=np.float32)
    cand, _ = state.ann.search(q, max(ann_candidates, k) + 1)
    cand = cand[0]
    cand = cand[(cand >= 0) & (cand < state.model.n_items) & (cand != iidx)]
    _, first = np.unique(cand, return_index=True)
    cand = cand[np.sort(first)]
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
        raise UnknownIdError(f"unknown item {short_id(item_id)!r}") from None


def short_id(value: str, limit: int = 64) -> str:
    """An id as it may appear in an error message: at most ``limit`` characters."""
    return value if len(value) <= limit else value[:limit] + "..."
