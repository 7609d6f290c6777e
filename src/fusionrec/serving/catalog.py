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
from fusionrec.errors import ModelStateError
from fusionrec.models.item_filters import GenreIndex, as_genre_list, genre_lists

__all__ = ["Catalog", "write_catalog", "catalog_frame", "CATALOG_FILE"]

CATALOG_FILE = "catalog.parquet"


def catalog_frame(dataset: Dataset) -> pd.DataFrame:
    """item_id, title, genres (list of str) for every item of ``dataset``."""
    titles = dataset.item_titles()
    genres = [list(g) for g in genre_lists(dataset)]
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


@dataclass
class Catalog:
    """Titles and genres aligned with a model's item indices."""

    titles: np.ndarray
    genres: list[tuple[str, ...]]
    """Genres per item; tuples of strings (items without genres share ``()``), which the garbage
    collector does not track, so a million-item catalog adds no work to its full collections."""
    index: GenreIndex
    """Item masks by genre (the library's item-feature filter)."""

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
            missing = {"item_id", "title", "genres"} - set(frame.columns)
            if missing:
                raise ModelStateError(f"{CATALOG_FILE} lacks the column(s) {sorted(missing)}")
            idx = items.to_idx(frame["item_id"].astype(str).to_numpy(), unknown="mask")
            ok = idx >= 0
            for i, t, g in zip(
                idx[ok], frame["title"].to_numpy()[ok], frame["genres"].to_numpy()[ok], strict=True
            ):
                if t:
                    titles[i] = str(t)
                genres[i] = tuple(as_genre_list(g))
        return cls(titles, genres, GenreIndex(genres, n))

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
            p = Path(model_dir) / CATALOG_FILE
            try:
                frame = pd.read_parquet(p)
            except Exception as e:  # pyarrow raises several types for a damaged file
                raise ModelStateError(f"{p}: not a readable catalogue ({type(e).__name__}: {e})") from None
            try:
                return cls.build(items, frame, fallback_titles)
            except ModelStateError as e:
                raise ModelStateError(f"{p}: {e}") from None
            except (TypeError, ValueError, KeyError) as e:
                raise ModelStateError(f"{p}: malformed catalogue ({e})") from None
        elif dataset is not None:
            frame = catalog_frame(dataset)
        return cls.build(items, frame, fallback_titles)

    def genre_mask(self, genre: str) -> np.ndarray | None:
        """Items whose genre list contains ``genre`` (case-insensitive); None if no item has it."""
        return self.index.get(genre)

    @property
    def genre_names(self) -> list[str]:
        return self.index.names

    def title(self, i: int) -> str | None:
        t = self.titles[i]
        return str(t) if t is not None and str(t) else None
