"""Item-feature filters for recommend: which items carry a genre (or category, class).

The library and the service read genres the same way: a ``genres``/``genre``/``class``/
``category``/``categories`` column of the item features, each value a list or a ``|``- or
space-separated string. :func:`genre_filter` gives the boolean mask that
``Recommender.recommend(item_filter=...)`` takes; the service builds one
:class:`GenreIndex` per loaded model from its catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

if TYPE_CHECKING:
    from fusionrec.models.base import Recommender

__all__ = ["GENRE_COLUMNS", "GenreIndex", "genre_lists", "genre_filter", "as_genre_list"]

GENRE_COLUMNS = ("genres", "genre", "class", "category", "categories")


def as_genre_list(v: object) -> list[str]:
    """One item's genres from a list/array value or a ``|``/space-separated string."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    if isinstance(v, (list, tuple, np.ndarray)):
        return [str(x) for x in v]
    return [s for s in str(v).replace("|", " ").split() if s]


def genre_lists(dataset: Dataset) -> list[tuple[str, ...]]:
    """Genres per item of ``dataset`` (empty tuples without a genre column)."""
    f = dataset.item_features
    col = None if f is None else next((c for c in GENRE_COLUMNS if c in f.columns), None)
    if col is None:
        return [()] * dataset.n_items
    return [tuple(as_genre_list(v)) for v in f[col]]


class GenreIndex:
    """Boolean item masks by genre (case-insensitive), built once per catalogue."""

    def __init__(self, genres: Sequence[Sequence[str]], n_items: int) -> None:
        if len(genres) != n_items:
            raise ConfigError(f"{len(genres)} genre lists for {n_items} items")
        self._masks: dict[str, np.ndarray] = {}
        for i, gs in enumerate(genres):
            for g in gs:
                m = self._masks.get(g.lower())
                if m is None:
                    m = self._masks[g.lower()] = np.zeros(n_items, dtype=bool)
                m[i] = True

    @property
    def names(self) -> list[str]:
        return sorted(self._masks)

    def get(self, genre: str) -> np.ndarray | None:
        """The items with ``genre``, or None when no item has it."""
        return self._masks.get(genre.lower())

    def mask(self, genre: str) -> np.ndarray:
        """The items with ``genre``; a ConfigError naming the known genres when none has it."""
        m = self.get(genre)
        if m is None:
            known = ", ".join(self.names[:30]) or "none (no item has a genre)"
            shown = genre if len(genre) <= 64 else genre[:64] + "..."
            raise ConfigError(f"unknown genre {shown!r}; known genres: {known}")
        return m


def genre_filter(model: Recommender, dataset: Dataset, genre: str) -> np.ndarray:
    """Mask over ``model``'s items of those whose genres in ``dataset`` include ``genre``.

    Items of the model that the dataset lacks are left out; for
    ``model.recommend(users, item_filter=genre_filter(model, dataset, "Comedy"))``."""
    lists: list[tuple[str, ...]] = [()] * model.n_items
    idx = model.items_.to_idx(dataset.items.ids, unknown="mask")
    for i, gs in zip(idx.tolist(), genre_lists(dataset), strict=True):
        if i >= 0:
            lists[i] = gs
    return GenreIndex(lists, model.n_items).mask(genre)
