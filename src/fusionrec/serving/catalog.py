"""Item metadata the service shows and filters on (titles, genres), saved beside a model.

``write_catalog(dataset, model_dir)`` writes ``catalog.parquet`` (item_id, title, genres) in a
saved model folder; the service reads it at load time. Without it the service can read the
item table of a dataset given by ``--dataset``; without either, items have no titles/genres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap

__all__ = ["Catalog", "write_catalog", "catalog_frame", "CATALOG_FILE"]

CATALOG_FILE = "catalog.parquet"
_GENRE_COLUMNS = ("genres", "genre", "class", "category", "categories")


def catalog_frame(dataset: Dataset) -> pd.DataFrame:
    """item_id, title, genres (list of str) for every item of ``dataset``."""
    titles = dataset.item_titles()
    genres: list[list[str]] = [[] for _ in range(dataset.n_items)]
    f = dataset.item_features
    if f is not None:
        col = next((c for c in _GENRE_COLUMNS if c in f.columns), None)
        if col is not None:
            genres = [_as_list(v) for v in f[col]]
    return pd.DataFrame(
        {
            "item_id": dataset.items.ids.astype(str),
            "title": [str(t) for t in titles] if titles is not None else [""] * dataset.n_items,
            "genres": genres,
        }
    )


def write_catalog(dataset: Dataset, model_dir: str | Path) -> Path:
    """Write ``catalog.parquet`` into a saved model folder (atomic rename)."""
    path = Path(model_dir) / CATALOG_FILE
    tmp = path.with_name(f".{CATALOG_FILE}.tmp")
    catalog_frame(dataset).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def _as_list(v: object) -> list[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    if isinstance(v, (list, tuple, np.ndarray)):
        return [str(x) for x in v]
    return [s for s in str(v).replace("|", " ").split() if s]


@dataclass
class Catalog:
    """Titles and genres aligned with a model's item indices."""

    titles: np.ndarray
    genres: list[tuple[str, ...]]
    """Genres per item; tuples of strings (items without genres share ``()``), which the garbage
    collector does not track, so a million-item catalog adds no work to its full collections."""
    _genre_masks: dict[str, np.ndarray]

    @classmethod
    def build(
        cls, items: IdMap, frame: pd.DataFrame | None, fallback_titles: np.ndarray | None = None
    ) -> Catalog:
        n = len(items)
        titles = (
            np.asarray(fallback_titles, dtype=object)
            if fallback_titles is not None
            else np.full(n, "", dtype=object)
        )
        genres: list[tuple[str, ...]] = [()] * n
        if frame is not None:
            idx = items.to_idx(frame["item_id"].astype(str).to_numpy(), unknown="mask")
            ok = idx >= 0
            for i, t, g in zip(
                idx[ok], frame["title"].to_numpy()[ok], frame["genres"].to_numpy()[ok], strict=True
            ):
                if t:
                    titles[i] = str(t)
                genres[i] = tuple(_as_list(g))
        masks: dict[str, np.ndarray] = {}
        for i, gs in enumerate(genres):
            for g in gs:
                m = masks.get(g.lower())
                if m is None:
                    m = masks[g.lower()] = np.zeros(n, dtype=bool)
                m[i] = True
        return cls(titles, genres, masks)

    @classmethod
    def load(
        cls,
        items: IdMap,
        model_dir: Path | None,
        dataset: Dataset | None,
        fallback_titles: np.ndarray | None,
    ) -> Catalog:
        frame = None
        if model_dir is not None and (Path(model_dir) / CATALOG_FILE).exists():
            frame = pd.read_parquet(Path(model_dir) / CATALOG_FILE)
        elif dataset is not None:
            frame = catalog_frame(dataset)
        return cls.build(items, frame, fallback_titles)

    def genre_mask(self, genre: str) -> np.ndarray | None:
        """Items whose genre list contains ``genre`` (case-insensitive); None if no item has it."""
        return self._genre_masks.get(genre.lower())

    @property
    def genre_names(self) -> list[str]:
        return sorted(self._genre_masks)

    def title(self, i: int) -> str | None:
        t = self.titles[i]
        return str(t) if t is not None and str(t) else None
