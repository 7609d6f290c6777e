"""The official GroupLens MovieLens formats: 100k (``u.data``), 1M/10M (``*.dat``), latest/25M (CSV).

Every variant gives the same shape: interactions (user_id, item_id as strings, rating,
timestamp), item features ``title`` (year stripped), ``year`` (float, NaN when absent) and
``genres`` (list of str), and user features where the variant has them. When the folder also
holds RecBole atomic ``<name>.kg`` and ``<name>.link`` files, the KG is attached.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data._textio import (
    DelimitedText,
    first_bad,
    read_csv_strict,
    read_delimited,
    to_float,
)
from fusionrec.data.dataset import Dataset
from fusionrec.data.validation import check_ids, check_unique
from fusionrec.errors import DataFormatError

__all__ = ["load_movielens", "detect_movielens", "ML100K_GENRES", "split_title_year"]

log = logging.getLogger(__name__)

#: Genre flag order of ``u.item`` (as listed in ``u.genre`` and the ml-100k README).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


def split_title_year(titles: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Strip a trailing ``(1995)`` from each title; return (titles, years as float, NaN if none)."""
    t = titles.astype(str).str.strip()
    m = t.str.extract(_YEAR, expand=False)
    years = pd.to_numeric(m, errors="coerce").to_numpy(np.float64)
    clean = t.str.replace(_YEAR, "", regex=True).str.strip()
    return clean, years


def detect_movielens(folder: str | os.PathLike) -> str | None:
    """Which MovieLens variant a folder holds: ``"100k"``, ``"1m"``, ``"csv"`` or None."""
    folder = Path(folder)
    if (folder / "u.data").exists():
        return "100k"
    if (folder / "ratings.dat").exists():
        return "1m"
    if (folder / "ratings.csv").exists():
        return "csv"
    return None


def _ints(col: pd.Series, src: DelimitedText, field: str) -> np.ndarray:
    v = to_float(col, src, field, allow_empty=False)
    return v


def _ratings(src: DelimitedText, fields: tuple[int, int, int, int]) -> pd.DataFrame:
    u, i, r, t = fields
    f = src.frame
    for c, nm in ((u, "user id"), (i, "item id")):
        check_ids(f[c].str.strip(), path=src.path, field=nm, line_of=src.line_of)
    return pd.DataFrame(
        {
            "user_id": f[u].str.strip().to_numpy(dtype=object),
            "item_id": f[i].str.strip().to_numpy(dtype=object),
            "rating": _ints(f[r], src, "rating"),
            "timestamp": _ints(f[t], src, "timestamp"),
        }
    )


def _genre_names(folder: Path) -> tuple[str, ...]:
    g = folder / "u.genre"
    if not g.exists():
        return ML100K_GENRES
    src = read_delimited(g, "|", header=False, n_fields=2, encoding="latin-1", expect="genre|index")
    idx = to_float(src.frame[1], src, "genre index", allow_empty=False).astype(int)
    names = [""] * len(idx)
    for n, k in zip(src.frame[0].tolist(), idx.tolist(), strict=True):
        if not 0 <= k < len(idx):
            raise DataFormatError(g, None, f"genre index {k} out of range 0..{len(idx) - 1}")
        names[k] = n
    return tuple(names)


def _load_100k(
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, dict, dict]:
    inter = _ratings(
        read_delimited(
            folder / "u.data",
            "\t",
            header=False,
            n_fields=4,
            expect="user item rating timestamp",
            numeric=(2, 3),
        ),
        (0, 1, 2, 3),
    )
    items = users = None
    itypes: dict[str, str] = {}
    utypes: dict[str, str] = {}
    if (folder / "u.item").exists():
        genres = _genre_names(folder)
        n = 5 + len(genres)
        src = read_delimited(
            folder / "u.item", "|", header=False, n_fields=n, encoding="latin-1",
            expect=f"id|title|release date|video release date|IMDb URL|{len(genres)} genre flags",
        )  # fmt: skip
        f = src.frame
        flags = np.column_stack(
            [
                to_float(f[5 + k], src, f"genre flag {genres[k]!r}", allow_empty=False)
                for k in range(len(genres))
            ]
        )
        bad = first_bad(~np.isin(flags, (0.0, 1.0)).all(axis=1))
        if bad is not None:
            raise DataFormatError(src.path, src.line_of(bad), "genre flags must be 0 or 1")
        check_ids(f[0].str.strip(), path=src.path, field="item id", line_of=src.line_of)
        check_unique(f[0].str.strip(), path=src.path, field="item id", line_of=src.line_of)
        title, year = split_title_year(f[1])
        names = np.asarray(genres, dtype=object)
        items = pd.DataFrame(
            {
                "item_id": f[0].str.strip().to_numpy(dtype=object),
                "title": title.to_numpy(dtype=object),
                "year": year,
                "genres": [list(names[row.astype(bool)]) for row in flags],
                "release_date": f[2].to_numpy(dtype=object),
                "imdb_url": f[4].to_numpy(dtype=object),
            }
        )
        itypes = {
            "title": "token",
            "year": "float",
            "genres": "token_seq",
            "release_date": "token",
            "imdb_url": "token",
        }
    if (folder / "u.user").exists():
        src = read_delimited(
            folder / "u.user",
            "|",
            header=False,
            n_fields=5,
            encoding="latin-1",
            expect="id|age|gender|occupation|zip",
        )
        f = src.frame
        check_ids(f[0].str.strip(), path=src.path, field="user id", line_of=src.line_of)
        check_unique(f[0].str.strip(), path=src.path, field="user id", line_of=src.line_of)
        users = pd.DataFrame(
            {
                "user_id": f[0].str.strip().to_numpy(dtype=object),
                "age": f[1].to_numpy(dtype=object),
                "gender": f[2].to_numpy(dtype=object),
                "occupation": f[3].to_numpy(dtype=object),
                "zip_code": f[4].to_numpy(dtype=object),
            }
        )
        utypes = dict.fromkeys(("age", "gender", "occupation", "zip_code"), "token")
    return inter, items, users, itypes, utypes


def _load_1m(
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, dict, dict]:
    inter = _ratings(
        read_delimited(
            folder / "ratings.dat",
            "::",
            header=False,
            n_fields=4,
            encoding="latin-1",
            expect="UserID::MovieID::Rating::Timestamp",
            numeric=(2, 3),
        ),
        (0, 1, 2, 3),
    )
    items = users = None
    itypes: dict[str, str] = {}
    utypes: dict[str, str] = {}
    if (folder / "movies.dat").exists():
        src = read_delimited(
            folder / "movies.dat",
            "::",
            header=False,
            n_fields=3,
            encoding="latin-1",
            expect="MovieID::Title::Genres",
        )
        check_ids(src.frame[0].str.strip(), path=src.path, field="movie id", line_of=src.line_of)
        check_unique(src.frame[0].str.strip(), path=src.path, field="movie id", line_of=src.line_of)
        items, itypes = _movies(src.frame[0], src.frame[1], src.frame[2])
    if (folder / "users.dat").exists():
        src = read_delimited(
            folder / "users.dat",
            "::",
            header=False,
            n_fields=5,
            encoding="latin-1",
            expect="UserID::Gender::Age::Occupation::Zip-code",
        )
        f = src.frame
        check_ids(f[0].str.strip(), path=src.path, field="user id", line_of=src.line_of)
        check_unique(f[0].str.strip(), path=src.path, field="user id", line_of=src.line_of)
        users = pd.DataFrame(
            {
                "user_id": f[0].str.strip().to_numpy(dtype=object),
                "gender": f[1].to_numpy(dtype=object),
                "age": f[2].to_numpy(dtype=object),
                "occupation": f[3].to_numpy(dtype=object),
                "zip_code": f[4].to_numpy(dtype=object),
            }
        )
        utypes = dict.fromkeys(("gender", "age", "occupation", "zip_code"), "token")
    return inter, items, users, itypes, utypes


def _movies(
    ids: pd.Series, titles: pd.Series, genres: pd.Series
) -> tuple[pd.DataFrame, dict[str, str]]:
    title, year = split_title_year(titles)
    g = [
        [x for x in s.split("|") if x and x != "(no genres listed)"]
        for s in genres.astype(str).tolist()
    ]
    items = pd.DataFrame(
        {
            "item_id": ids.str.strip().to_numpy(dtype=object),
            "title": title.to_numpy(dtype=object),
            "year": year,
            "genres": g,
        }
    )
    return items, {"title": "token", "year": "float", "genres": "token_seq"}


def _csv_columns(src: DelimitedText, need: tuple[str, ...]) -> None:
    missing = [c for c in need if c not in (src.header or [])]
    if missing:
        raise DataFormatError(
            src.path,
            1,
            f"header lacks column(s) {missing}; expected {', '.join(need)} (have {src.header})",
        )


def _fast_ratings(path: Path) -> dict[str, object] | None:
    """ratings.csv through pyarrow (ML-25M: 25M rows in seconds), or None to read it strictly."""
    from fusionrec.data.bulk import FastPathMiss, read_interactions_fast

    cols = {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp"}
    try:
        parts = read_interactions_fast(path, cols)
    except FastPathMiss as e:
        log.debug("%s: fast reader declined (%s)", path, e)
        return None
    if any(np.isnan(parts[c]).any() for c in ("rating", "timestamp")):  # type: ignore[call-overload]
        return None  # the strict reader reports the empty field with its line
    return parts


def _load_csv(
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, dict, dict]:
    inter = _fast_ratings(folder / "ratings.csv")
    if inter is None:  # something unusual: the strict reader names the line
        src = read_csv_strict(folder / "ratings.csv", numeric=("rating", "timestamp"))
        _csv_columns(src, ("userId", "movieId", "rating", "timestamp"))
        cols = tuple(src.header.index(c) for c in ("userId", "movieId", "rating", "timestamp"))
        src.frame.columns = range(len(src.header))
        inter = _ratings(src, cols)  # type: ignore[arg-type]
    items = None
    itypes: dict[str, str] = {}
    if (folder / "movies.csv").exists():
        m = read_csv_strict(folder / "movies.csv")
        _csv_columns(m, ("movieId", "title", "genres"))
        check_ids(m.frame["movieId"].str.strip(), path=m.path, field="movieId", line_of=m.line_of)
        check_unique(m.frame["movieId"].str.strip(), path=m.path, field="movieId", line_of=m.line_of)
        items, itypes = _movies(m.frame["movieId"], m.frame["title"], m.frame["genres"])
    return inter, items, None, itypes, {}


def _attach_kg(folder: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    kgs = sorted(folder.glob("*.kg"))
    if not kgs:
        return None, None
    from fusionrec.data.atomic import read_atomic

    kpath = kgs[0]
    lpath = kpath.with_suffix(".link")
    if not lpath.exists():
        raise DataFormatError(
            lpath, None, "file not found: a KG needs both .kg (triples) and .link (item -> entity)"
        )
    triples, _ = read_atomic(kpath)
    link, _ = read_atomic(lpath)
    log.info("attaching KG from %s (%d triples)", kpath.name, len(triples))
    return triples, link


def load_movielens(folder: str | os.PathLike, name: str | None = None) -> Dataset:
    """Load a MovieLens folder in its official GroupLens format, detecting the variant.

    ``u.data`` (+ ``u.item``, ``u.user``, ``u.genre``) -> 100k; ``ratings.dat`` (+
    ``movies.dat``, ``users.dat``) -> 1M/10M; ``ratings.csv`` (+ ``movies.csv``) -> latest/25M.
    Text is latin-1 for the 100k and ``.dat`` files, UTF-8 for the CSVs.

    Raises:
        DataFormatError: naming the file and line for malformed content, or the folder when
            no MovieLens ratings file is there.
    """
    folder = Path(folder)
    variant = detect_movielens(folder)
    if variant is None:
        raise DataFormatError(
            folder,
            None,
            "no MovieLens ratings file (u.data, ratings.dat or ratings.csv) in this folder",
        )
    loader = {"100k": _load_100k, "1m": _load_1m, "csv": _load_csv}[variant]
    inter, items, users, itypes, utypes = loader(folder)
    if items is not None:
        dup = first_bad(items["item_id"].duplicated().to_numpy())
        if dup is not None:
            raise DataFormatError(
                folder,
                None,
                f"movie id {items['item_id'].iloc[dup]!r} listed twice in the movies file",
            )
    kg_triples, kg_link = _attach_kg(folder)
    return Dataset.from_frames(
        inter,
        users=users,
        items=items,
        kg_triples=kg_triples,
        kg_link=kg_link,
        user_feature_types=utypes or None,
        item_feature_types=itypes or None,
        text_fields=("title", "genres") if items is not None else (),
        name=name or folder.name,
    )
