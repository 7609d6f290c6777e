"""``load_dataset``: one call for a known dataset name, a folder of files, or a table file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fusionrec.data.atomic import load_atomic
from fusionrec.data.dataset import Dataset
from fusionrec.data.fetch import DATASETS, dataset_cache_dir, fetch
from fusionrec.data.manifest import has_manifest
from fusionrec.data.movielens import detect_movielens, load_movielens
from fusionrec.data.tabular import load_table
from fusionrec.errors import DataFormatError

__all__ = ["load_dataset", "load_folder", "BUILT_DIR"]

log = logging.getLogger(__name__)

#: Sub-folder of a dataset's cache holding the built Dataset (bump when loaders change output).
BUILT_DIR = "fusionrec-dataset-v1"
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def load_folder(folder: str | os.PathLike, name: str | None = None) -> Dataset:
    """Load a folder: a saved Dataset (``meta.json``), RecBole atomic files (``*.inter``) or MovieLens files."""
    folder = Path(folder)
    if (folder / "meta.json").exists():
        return Dataset.load(folder)
    if any(folder.glob("*.inter")):
        return load_atomic(folder)
    if detect_movielens(folder) is not None:
        return load_movielens(folder, name=name)
    raise DataFormatError(
        folder,
        None,
        "no dataset found: expected a saved fusionrec Dataset (meta.json), RecBole atomic files "
        "(<name>.inter ...) or MovieLens files (u.data, ratings.dat or ratings.csv)",
    )


def load_dataset(
    name_or_path: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = False,
    rebuild: bool = False,
) -> Dataset:
    """Load a dataset by name or path.

    Args:
        name_or_path: a known name (``ml-100k``, ``ml-1m``, ``ml-latest-small``, ``ml-25m``:
            fetched into the cache on first use), a folder (saved Dataset, RecBole atomic files
            or MovieLens files), or a CSV/TSV/Parquet file with columns ``user_id``, ``item_id``
            and optional ``rating``, ``timestamp``.
        cache_dir: folder holding the per-dataset cache folders (default
            ``$FUSIONREC_HOME/datasets``).
        progress: show download progress.
        rebuild: ignore a cached built Dataset and parse the raw files again.

    A known dataset is parsed once and cached as a saved Dataset (parquet) under
    ``<cache>/<name>/fusionrec-dataset-v1``; later loads read that.

    Raises:
        FetchError: a known dataset could not be fetched from any source.
        DataFormatError: the path does not exist or holds no readable dataset.
    """
    key = str(name_or_path)
    if key in DATASETS:
        built = dataset_cache_dir(key, cache_dir) / BUILT_DIR
        if built.exists() and not rebuild:
            try:
                if not has_manifest(built):
                    raise DataFormatError(built, None, "no manifest (older version or unfinished)")
                return Dataset.load(built)
            except DataFormatError as e:
                log.warning("cached dataset is damaged, rebuilding it from the raw files: %s", e)
        raw = fetch(key, cache_dir=cache_dir, progress=progress)
        ds = load_folder(raw, name=key)
        if ds.name != key:
            from dataclasses import replace

            ds = replace(ds, name=key, _cache={})
        try:
            ds.save(built)
        except OSError as e:  # a read-only cache still gives a dataset
            log.warning("could not cache the built dataset at %s: %s", built, e)
        return ds
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DataFormatError(
            path,
            None,
            f"no such file or folder, and not a known dataset name (known: {', '.join(sorted(DATASETS))})",
        )
    if path.is_dir():
        return load_folder(path)
    if path.suffix.lower() in _TABLE_SUFFIXES:
        sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
        return load_table(path, sep=sep, progress=progress)
    if path.suffix.lower() in (".inter",):
        return load_atomic(path.parent, name=path.stem)
    raise DataFormatError(
        path,
        None,
        f"unsupported file type {path.suffix!r}; expected one of {', '.join(_TABLE_SUFFIXES)} or a folder",
    )
