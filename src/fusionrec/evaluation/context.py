"""What beyond-accuracy and fairness metrics need besides the ranked lists, taken from the
training split: item popularity, item genres and feature vectors, user histories, user groups
(gender, age band, activity) and item groups (popularity head/tail)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.evaluation.fairness import popularity_groups

__all__ = ["EvalContext", "Groups", "item_genre_matrix", "genre_column", "AGE_BANDS"]

_GENRE_COLUMNS = ("genres", "genre", "class", "categories", "category")
#: MovieLens-1M's age bands (lower bounds), used for ml-100k's exact ages too.
AGE_BANDS = (0, 18, 25, 35, 45, 50, 56)
_AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")


@dataclass(frozen=True)
class Groups:
    """A partition: ``codes[x]`` indexes ``names`` (-1 = unknown)."""

    codes: np.ndarray
    names: list[str]


def genre_column(ds: Dataset) -> str | None:
    """The item feature column holding genres: a ``token_seq`` column named genres/class/...
    (``token`` columns of those names also count)."""
    if ds.item_features is None:
        return None
    types = ds.item_feature_types
    for c in _GENRE_COLUMNS:
        if c in ds.item_features.columns and types.get(c) in ("token_seq", "token"):
            return c
    return None


def item_genre_matrix(ds: Dataset, column: str | None = None) -> tuple[sp.csr_matrix, list[str]] | None:
    """Binary (n_items, n_genres) matrix of item genres and the genre names, or None."""
    col = column or genre_column(ds)
    if col is None:
        return None
    if ds.item_features is None or col not in ds.item_features.columns:
        raise ValueError(f"dataset {ds.name!r} has no item feature column {col!r}")
    vals = ds.item_features[col].tolist()
    lists = [
        [] if v is None or (isinstance(v, float) and np.isnan(v)) else ([v] if isinstance(v, str) else list(v))
        for v in vals
    ]
    names = sorted({str(g) for lst in lists for g in lst})
    pos = {g: j for j, g in enumerate(names)}
    rows = [i for i, lst in enumerate(lists) for _ in lst]
    cols = [pos[str(g)] for lst in lists for g in lst]
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(lists), len(names)))
    m.data[:] = 1.0  # a genre listed twice still counts once
    return m, names


def _token_groups(s: pd.Series) -> Groups:
    vals = s.astype("string")
    names = sorted(v for v in vals.dropna().unique())
    pos = {v: j for j, v in enumerate(names)}
    codes = np.array([pos.get(v, -1) if v is not pd.NA else -1 for v in vals], dtype=np.int64)
    return Groups(codes, [str(n) for n in names])


def _age_groups(s: pd.Series) -> Groups:
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().sum() < 0.5 * len(s):  # already banded (e.g. "25-34"): the tokens are the bands
        return _token_groups(s)
    codes = np.searchsorted(np.asarray(AGE_BANDS), num.to_numpy(dtype=np.float64), side="right") - 1
    codes = np.where(num.isna().to_numpy(), -1, codes).astype(np.int64)
    return Groups(codes, list(_AGE_LABELS))


def activity_groups(activity: np.ndarray, active_share: float = 0.2) -> Groups:
    """0 = 'active' (the ``active_share`` users with most training interactions, ties by
    index), 1 = 'inactive'."""
    codes = popularity_groups(np.asarray(activity), active_share)
    return Groups(codes, ["active", "inactive"])


@dataclass
class EvalContext:
    """Side information for beyond-accuracy metrics, built once from the training split."""

    n_users: int
    n_items: int
    item_count: np.ndarray
    train: sp.csr_matrix
    item_genres: sp.csr_matrix | None = None
    genre_names: list[str] = field(default_factory=list)
    item_vectors: np.ndarray | None = None
    user_groups: dict[str, Groups] = field(default_factory=dict)
    item_groups: Groups | None = None
    tail_ratio: float = 0.1

    @classmethod
    def from_dataset(
        cls,
        train: Dataset,
        diversity_features: str | None = None,
        head_share: float = 0.2,
        tail_ratio: float = 0.1,
    ) -> EvalContext:
        """``diversity_features``: an item embedding name (e.g. "text") or a genre column for
        intra-list diversity; default: the genre column, else the first item embedding."""
        counts = train.item_popularity().astype(np.float64)
        g = item_genre_matrix(train)
        genres, gnames = (g[0], g[1]) if g is not None else (None, [])
        vec: np.ndarray | None = None
        if diversity_features is not None:
            if diversity_features in train.item_embeddings:
                vec = np.nan_to_num(np.asarray(train.item_embeddings[diversity_features], np.float64))
            else:
                gm = item_genre_matrix(train, diversity_features)
                if gm is None:
                    raise ValueError(f"dataset {train.name!r} has no item features {diversity_features!r}")
                vec = gm[0].toarray()
        elif genres is not None:
            vec = genres.toarray()
        elif train.item_embeddings:
            vec = np.nan_to_num(np.asarray(next(iter(train.item_embeddings.values())), np.float64))
        ugroups: dict[str, Groups] = {}
        uf = train.user_features
        if uf is not None:
            if "gender" in uf.columns:
                ugroups["gender"] = _token_groups(uf["gender"])
            if "age" in uf.columns:
                ugroups["age"] = _age_groups(uf["age"])
        ugroups["activity"] = activity_groups(train.user_activity())
        return cls(
            n_users=train.n_users,
            n_items=train.n_items,
            item_count=counts,
            train=train.matrix("csr"),
            item_genres=genres,
            genre_names=gnames,
            item_vectors=vec,
            user_groups=ugroups,
            item_groups=Groups(popularity_groups(counts, head_share), ["head", "tail"]),
            tail_ratio=tail_ratio,
        )
