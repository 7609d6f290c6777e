"""The frozen Dataset: interactions, user/item features, item text, KG and item embeddings.

External ids (``user_id``, ``item_id``) live at the edges; inside everything is dense indices
(``user_idx``, ``item_idx``) through one :class:`IdMap` per side. Splits and filters return new
Datasets that share the id maps, so indices mean the same thing across train/valid/test.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fusionrec._fsutil import replace_dir
from fusionrec.data.idmap import IdMap
from fusionrec.errors import DataFormatError, UnknownIdError

__all__ = ["Dataset", "KnowledgeGraph", "FEATURE_TYPES"]

#: Feature column types, as in RecBole atomic files.
FEATURE_TYPES = ("token", "token_seq", "float", "float_seq")
_FORMAT_VERSION = 1


def _readonly(a: np.ndarray | None, dtype: Any = None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.array(a, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class KnowledgeGraph:
    """KG triples over entity indices plus the item -> entity link (-1 = item not linked)."""

    entities: IdMap
    relations: IdMap
    head: np.ndarray
    relation: np.ndarray
    tail: np.ndarray
    item_entity: np.ndarray

    def __post_init__(self) -> None:
        for name in ("head", "relation", "tail", "item_entity"):
            object.__setattr__(self, name, _readonly(getattr(self, name), np.int64))

    @property
    def n_triples(self) -> int:
        return len(self.head)

    @property
    def n_linked_items(self) -> int:
        return int((self.item_entity >= 0).sum())

    def triples_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "head_id": self.entities.to_ids(self.head),
                "relation_id": self.relations.to_ids(self.relation),
                "tail_id": self.entities.to_ids(self.tail),
            }
        )

    @classmethod
    def from_frames(cls, triples: pd.DataFrame, link: pd.DataFrame, items: IdMap) -> KnowledgeGraph:
        """``triples``: head_id, relation_id, tail_id; ``link``: item_id, entity_id."""
        for col in ("head_id", "relation_id", "tail_id"):
            if col not in triples.columns:
                raise DataFormatError("kg triples", None, f"missing column {col!r}")
        for col in ("item_id", "entity_id"):
            if col not in link.columns:
                raise DataFormatError("kg link", None, f"missing column {col!r}")
        linked_entities = link["entity_id"].astype(str).to_numpy()
        entities = IdMap.from_values(
            np.concatenate(
                [linked_entities, triples["head_id"].astype(str).to_numpy(), triples["tail_id"].astype(str).to_numpy()]
            ),
            name="entity",
        )
        relations = IdMap.from_values(triples["relation_id"].astype(str).to_numpy(), name="relation")
        item_entity = np.full(len(items), -1, dtype=np.int64)
        item_idx = items.to_idx(link["item_id"].astype(str).to_numpy(), unknown="mask")
        ok = item_idx >= 0
        item_entity[item_idx[ok]] = entities.to_idx(linked_entities[ok])
        return cls(
            entities=entities,
            relations=relations,
            head=entities.to_idx(triples["head_id"].astype(str).to_numpy()),
            relation=relations.to_idx(triples["relation_id"].astype(str).to_numpy()),
            tail=entities.to_idx(triples["tail_id"].astype(str).to_numpy()),
            item_entity=item_entity,
        )


@dataclass(frozen=True, eq=False)
class Dataset:
    """An immutable recommendation dataset.

    Attributes:
        users, items: id maps (external id <-> dense index).
        user_idx, item_idx: one entry per interaction (read-only int64 arrays).
        rating, timestamp: optional per-interaction float arrays.
        user_features, item_features: optional tables with one row per index (row i = index i),
            columns typed by ``user_feature_types`` / ``item_feature_types`` (see FEATURE_TYPES).
        text_fields: item feature columns holding text (title, description, ...).
        kg: optional knowledge graph linked to items.
        item_embeddings: named item matrices (n_items, d), float32; a NaN row = item missing.
        name: a label used in reports.
    """

    users: IdMap
    items: IdMap
    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    user_features: pd.DataFrame | None = None
    item_features: pd.DataFrame | None = None
    user_feature_types: Mapping[str, str] = field(default_factory=dict)
    item_feature_types: Mapping[str, str] = field(default_factory=dict)
    text_fields: tuple[str, ...] = ()
    kg: KnowledgeGraph | None = None
    item_embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str = "dataset"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "user_idx", _readonly(self.user_idx, np.int64))
        set_(self, "item_idx", _readonly(self.item_idx, np.int64))
        n = len(self.user_idx)
        if len(self.item_idx) != n:
            raise ValueError("user_idx and item_idx differ in length")
        for name in ("rating", "timestamp"):
            arr = getattr(self, name)
            if arr is not None:
                arr = _readonly(arr, np.float64)
                if len(arr) != n:
                    raise ValueError(f"{name} has {len(arr)} entries for {n} interactions")
                set_(self, name, arr)
        if n and (self.user_idx.min() < 0 or self.user_idx.max() >= len(self.users)):
            raise ValueError("user_idx out of range of the user IdMap")
        if n and (self.item_idx.min() < 0 or self.item_idx.max() >= len(self.items)):
            raise ValueError("item_idx out of range of the item IdMap")
        for side, table, ids in (("user", self.user_features, self.users), ("item", self.item_features, self.items)):
            if table is not None and len(table) != len(ids):
                raise ValueError(f"{side}_features has {len(table)} rows for {len(ids)} {side}s")
        embs = {}
        for k, m in dict(self.item_embeddings).items():
            m = np.asarray(m, dtype=np.float32)
            if m.ndim != 2 or m.shape[0] != len(self.items):
                raise ValueError(f"item embedding {k!r} has shape {m.shape}, expected ({len(self.items)}, d)")
            embs[k] = _readonly(m)
        set_(self, "item_embeddings", embs)
        set_(self, "user_feature_types", dict(self.user_feature_types))
        set_(self, "item_feature_types", dict(self.item_feature_types))
        set_(self, "text_fields", tuple(self.text_fields))

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.user_idx)

    def __len__(self) -> int:
        return self.n_interactions

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={self.n_interactions})"
        )

    # ------------------------------------------------------------- accessors
    def matrix(
        self, fmt: Literal["csr", "csc", "coo"] = "csr", values: Literal["binary", "rating"] = "binary"
    ) -> sp.spmatrix:
        """User x item sparse matrix. Duplicate (user, item) pairs count once (binary) or keep the last rating."""
        key = ("matrix", values)
        m = self._cache.get(key)
        if m is None:
            if values == "rating":
                if self.rating is None:
                    raise ValueError(f"dataset {self.name!r} has no ratings")
                # keep the last rating of a duplicated pair
                order = np.arange(self.n_interactions)
                df = pd.DataFrame({"u": self.user_idx, "i": self.item_idx, "r": self.rating, "o": order})
                df = df.drop_duplicates(["u", "i"], keep="last")
                data, rows, cols = df["r"].to_numpy(np.float32), df["u"].to_numpy(), df["i"].to_numpy()
            else:
                rows, cols = self.user_idx, self.item_idx
                data = np.ones(len(rows), dtype=np.float32)
            m = sp.csr_matrix((data, (rows, cols)), shape=(self.n_users, self.n_items), dtype=np.float32)
            m.sum_duplicates()
            if values == "binary":
                m.data[:] = 1.0
            m.sort_indices()
            for a in (m.data, m.indices, m.indptr):
                a.setflags(write=False)
            self._cache[key] = m
        if fmt == "csr":
            return m
        return m.asformat(fmt)

    def item_popularity(self) -> np.ndarray:
        """Number of interactions per item index."""
        return np.bincount(self.item_idx, minlength=self.n_items)

    def user_activity(self) -> np.ndarray:
        return np.bincount(self.user_idx, minlength=self.n_users)

    def history(self, user: object) -> np.ndarray:
        """External item ids the user interacted with, in time order when timestamps exist."""
        u = self.users.index(user)
        sel = np.flatnonzero(self.user_idx == u)
        if self.timestamp is not None:
            sel = sel[np.argsort(self.timestamp[sel], kind="stable")]
        return self.items.to_ids(self.item_idx[sel])

    def sequences(self) -> list[np.ndarray]:
        """Per-user item index sequences ordered by time (then by row order)."""
        key = ("sequences",)
        if key not in self._cache:
            ts = self.timestamp if self.timestamp is not None else np.zeros(self.n_interactions)
            order = np.lexsort((np.arange(self.n_interactions), ts, self.user_idx))
            users = self.user_idx[order]
            bounds = np.searchsorted(users, np.arange(self.n_users + 1))
            items = self.item_idx[order]
            self._cache[key] = [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]
        return self._cache[key]

    def item_titles(self) -> np.ndarray | None:
        """A display title per item index when the item table has one (else None)."""
        if self.item_features is None:
            return None
        for col in ("title", "movie_title", "name", "item_name"):
            if col in self.item_features.columns:
                return self.item_features[col].map(_display_text).to_numpy(dtype=object)
        return None

    def item_text(self, fields: tuple[str, ...] | None = None) -> list[str]:
        """Plain text per item from its text fields ("field: value" joined by '; ')."""
        fields = tuple(fields or self.text_fields)
        if self.item_features is None or not fields:
            return [""] * self.n_items
        parts = []
        cols = [self.item_features[f] for f in fields if f in self.item_features.columns]
        for row in zip(*cols, strict=True):
            parts.append("; ".join(_display_text(v) for v in row if _display_text(v)))
        return parts

    # ---------------------------------------------------------- derivations
    def with_interactions(self, mask_or_index: np.ndarray, name: str | None = None) -> Dataset:
        """A Dataset with a subset of interactions (boolean mask or row indices); id maps shared."""
        sel = np.asarray(mask_or_index)
        sub = lambda a: None if a is None else a[sel]  # noqa: E731
        return replace(
            self,
            user_idx=self.user_idx[sel],
            item_idx=self.item_idx[sel],
            rating=sub(self.rating),
            timestamp=sub(self.timestamp),
            name=name or self.name,
            _cache={},
        )

    def with_item_embedding(self, name: str, matrix: np.ndarray) -> Dataset:
        embs = dict(self.item_embeddings)
        embs[name] = matrix
        return replace(self, item_embeddings=embs, _cache={})

    def interactions_frame(self, external: bool = True) -> pd.DataFrame:
        """Interactions as a table: external ids (user_id, item_id) or indices."""
        if external:
            df = pd.DataFrame({"user_id": self.users.to_ids(self.user_idx), "item_id": self.items.to_ids(self.item_idx)})
        else:
            df = pd.DataFrame({"user_idx": self.user_idx, "item_idx": self.item_idx})
        if self.rating is not None:
            df["rating"] = self.rating
        if self.timestamp is not None:
            df["timestamp"] = self.timestamp
        return df

    def info(self) -> dict[str, Any]:
        """Summary statistics and which side information is present."""
        n_u, n_i, n = self.n_users, self.n_items, self.n_interactions
        out: dict[str, Any] = {
            "name": self.name,
            "users": n_u,
            "items": n_i,
            "interactions": n,
            "density": (n / (n_u * n_i)) if n_u and n_i else 0.0,
            "has_rating": self.rating is not None,
            "has_timestamp": self.timestamp is not None,
            "user_features": sorted(self.user_feature_types.items()),
            "item_features": sorted(self.item_feature_types.items()),
            "item_text_fields": list(self.text_fields),
            "item_embeddings": {k: int(v.shape[1]) for k, v in self.item_embeddings.items()},
        }
        if self.kg is not None:
            out["kg"] = {
                "triples": self.kg.n_triples,
                "entities": len(self.kg.entities),
                "relations": len(self.kg.relations),
                "linked_items": self.kg.n_linked_items,
            }
        else:
            out["kg"] = None
        return out

    # ------------------------------------------------------------ construct
    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame | Mapping[str, Any],
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        *,
        kg_triples: pd.DataFrame | None = None,
        kg_link: pd.DataFrame | None = None,
        user_feature_types: Mapping[str, str] | None = None,
        item_feature_types: Mapping[str, str] | None = None,
        text_fields: tuple[str, ...] | list[str] | None = None,
        item_embeddings: Mapping[str, pd.DataFrame | tuple[np.ndarray, np.ndarray]] | None = None,
        name: str = "dataset",
    ) -> Dataset:
        """Build from tables with external ids.

        ``interactions`` needs ``user_id`` and ``item_id`` and may have ``rating`` and
        ``timestamp`` (or is the dict :func:`fusionrec.data.bulk.read_interactions_fast` returns). ``users``/``items`` have ``user_id``/``item_id`` plus feature columns;
        their ids join the id maps even without interactions (cold users/items).
        ``item_embeddings`` maps a name to ``(item_ids, matrix)``; items left out get NaN rows.
        """
        if isinstance(interactions, Mapping) and "user_idx" in interactions:
            # already indexed (fusionrec.data.bulk): id maps plus per-row index arrays
            user_map, item_map = interactions["users"], interactions["items"]
            u_idx, i_idx = interactions["user_idx"], interactions["item_idx"]
            rating, ts = interactions.get("rating"), interactions.get("timestamp")
        else:
            for col in ("user_id", "item_id"):
                if col not in interactions.columns:
                    raise DataFormatError("interactions", None, f"missing column {col!r} (have {list(interactions.columns)})")
            # factorize: hash-based, first-appearance order (= IdMap.from_values), one pass
            u_idx, u_uniq = pd.factorize(interactions["user_id"].astype(str).to_numpy())
            i_idx, i_uniq = pd.factorize(interactions["item_id"].astype(str).to_numpy())
            user_map, item_map = IdMap(u_uniq, name="user"), IdMap(i_uniq, name="item")
            rating = interactions["rating"].to_numpy(np.float64) if "rating" in interactions.columns else None
            ts = interactions["timestamp"].to_numpy(np.float64) if "timestamp" in interactions.columns else None
        if users is not None:
            user_map = user_map.extend(users["user_id"].astype(str).to_numpy())
        if items is not None:
            item_map = item_map.extend(items["item_id"].astype(str).to_numpy())
        uf, ut = _align_table(users, "user_id", user_map, user_feature_types)
        itf, it = _align_table(items, "item_id", item_map, item_feature_types)
        if text_fields is None:
            text_fields = tuple(c for c, t in it.items() if t == "token_seq" and c in _TEXTY) or tuple(
                c for c in it if c in _TEXTY
            )
        kg = None
        if kg_triples is not None:
            if kg_link is None:
                raise DataFormatError("kg", None, "KG triples given without an item->entity link table")
            kg = KnowledgeGraph.from_frames(kg_triples, kg_link, item_map)
        embs = {}
        for k, v in (item_embeddings or {}).items():
            ids, mat = v
            mat = np.asarray(mat, dtype=np.float32)
            full = np.full((len(item_map), mat.shape[1]), np.nan, dtype=np.float32)
            idx = item_map.to_idx(ids, unknown="mask")
            ok = idx >= 0
            full[idx[ok]] = mat[ok]
            embs[k] = full
        return cls(
            users=user_map,
            items=item_map,
            user_idx=u_idx,
            item_idx=i_idx,
            rating=rating,
            timestamp=ts,
            user_features=uf,
            item_features=itf,
            user_feature_types=ut,
            item_feature_types=it,
            text_fields=tuple(text_fields),
            kg=kg,
            item_embeddings=embs,
            name=name,
        )

    # ------------------------------------------------------------ save/load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the dataset as a folder of parquet/npy files (atomic: temp folder, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            import pyarrow.parquet as pq

            from fusionrec.data._saved_io import interactions_table

            pq.write_table(interactions_table(self), tmp / "interactions.parquet")
            _table_with_ids(self.user_features, self.users, "user_id").to_parquet(tmp / "users.parquet", index=False)
            _table_with_ids(self.item_features, self.items, "item_id").to_parquet(tmp / "items.parquet", index=False)
            if self.kg is not None:
                self.kg.triples_frame().to_parquet(tmp / "kg.parquet", index=False)
                linked = np.flatnonzero(self.kg.item_entity >= 0)
                pd.DataFrame(
                    {
                        "item_id": self.items.to_ids(linked),
                        "entity_id": self.kg.entities.to_ids(self.kg.item_entity[linked]),
                    }
                ).to_parquet(tmp / "link.parquet", index=False)
            for k, m in self.item_embeddings.items():
                np.save(tmp / f"emb_{k}.npy", np.asarray(m), allow_pickle=False)
            meta = {
                "format_version": _FORMAT_VERSION,
                "name": self.name,
                "user_feature_types": self.user_feature_types,
                "item_feature_types": self.item_feature_types,
                "text_fields": list(self.text_fields),
                "item_embeddings": sorted(self.item_embeddings),
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            from fusionrec.data.manifest import write_manifest

            write_manifest(tmp)  # last: a folder with a valid manifest is complete
            replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, verify: bool = True) -> Dataset:
        """Load a folder written by :meth:`save`.

        With ``verify`` (default) and a ``manifest.json`` present, every file's size and
        SHA-256 are checked first; a folder without a manifest (older versions) is read and
        validated as it is.

        Raises:
            DataFormatError: naming the damaged file, for any missing, truncated or altered file,
                a malformed ``meta.json``, ids that do not resolve, or values that fail validation.
        """
        from fusionrec.data import _saved_io as sio
        from fusionrec.data.manifest import has_manifest, verify_manifest
        from fusionrec.data.validation import validate_dataset
        from fusionrec.errors import FusionRecError

        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.exists():
            raise DataFormatError(path, None, "not a saved fusionrec Dataset (meta.json missing)")
        if verify and has_manifest(path):
            verify_manifest(path)
        meta = sio.read_meta(meta_path, _FORMAT_VERSION)
        ipath, upath, mpath = path / "interactions.parquet", path / "users.parquet", path / "items.parquet"
        users, items = sio.read_parquet(upath), sio.read_parquet(mpath)
        sio.require_columns(upath, users, ("user_id", *meta["user_feature_types"]))
        sio.require_columns(mpath, items, ("item_id", *meta["item_feature_types"]))
        where = upath
        try:
            user_map = IdMap(users["user_id"].astype(str).to_numpy(), name="user")
            where = mpath
            item_map = IdMap(items["item_id"].astype(str).to_numpy(), name="item")
            uf = _features_from_saved(users, "user_id", meta["user_feature_types"])
            itf = _features_from_saved(items, "item_id", meta["item_feature_types"])
            kg = None
            where = path / "kg.parquet"
            if where.exists() or (path / "link.parquet").exists():
                triples, link = sio.read_parquet(where), sio.read_parquet(path / "link.parquet")
                kg = KnowledgeGraph.from_frames(triples, link, item_map)
            embs = {}
            for k in meta.get("item_embeddings", []):
                where = path / f"emb_{k}.npy"
                embs[k] = sio.read_npy(where)
            where = ipath
            ds = cls(
                users=user_map,
                items=item_map,
                **sio.read_interactions(ipath, user_map, item_map),
                user_features=uf,
                item_features=itf,
                user_feature_types=meta["user_feature_types"],
                item_feature_types=meta["item_feature_types"],
                text_fields=tuple(meta["text_fields"]),
                kg=kg,
                item_embeddings=embs,
                name=meta["name"],
            )
        except DataFormatError:
            raise
        except (FusionRecError, ValueError, KeyError, TypeError) as e:
            raise DataFormatError(where, None, f"damaged saved dataset: {e}") from None
        validate_dataset(ds, where=path)
        return ds

    def user_index(self, users: object) -> np.ndarray:
        """Indices for external user ids; raises UnknownIdError naming the first unknown id."""
        try:
            return self.users.to_idx(np.atleast_1d(np.asarray(users)))
        except UnknownIdError:
            raise


_TEXTY = ("title", "movie_title", "name", "item_name", "description", "overview", "plot", "genres", "class", "genre", "tags")


def _display_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and np.isnan(v):
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):
        return " ".join(str(x) for x in v)
    return str(v)


def _infer_type(s: pd.Series) -> str:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return "float"
    first = next((v for v in s if v is not None and not (isinstance(v, float) and np.isnan(v))), None)
    if isinstance(first, (list, tuple, np.ndarray)):
        return "float_seq" if len(first) and isinstance(first[0], (int, float, np.number)) else "token_seq"
    return "token"


def _align_table(
    table: pd.DataFrame | None, id_col: str, idmap: IdMap, types: Mapping[str, str] | None
) -> tuple[pd.DataFrame | None, dict[str, str]]:
    if table is None:
        return None, {}
    if id_col not in table.columns:
        raise DataFormatError(f"{id_col.split('_')[0]} table", None, f"missing column {id_col!r}")
    ids = table[id_col].astype(str)
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise DataFormatError(f"{id_col.split('_')[0]} table", None, f"duplicate {id_col} {dup!r}")
    feats = table.drop(columns=[id_col]).copy()
    feats.index = idmap.to_idx(ids.to_numpy())
    feats = feats.reindex(np.arange(len(idmap)))
    feats.index = pd.RangeIndex(len(idmap))
    out_types = {}
    for c in feats.columns:
        t = (types or {}).get(c) or _infer_type(feats[c])
        if t not in FEATURE_TYPES:
            raise DataFormatError(f"{id_col.split('_')[0]} table", None, f"column {c!r}: unknown feature type {t!r}, expected one of {FEATURE_TYPES}")
        out_types[c] = t
    return feats, out_types


def _table_with_ids(table: pd.DataFrame | None, ids: IdMap, id_col: str) -> pd.DataFrame:
    df = pd.DataFrame({id_col: ids.ids})
    if table is not None:
        df = pd.concat([df, table.reset_index(drop=True)], axis=1)
    return df


def _features_from_saved(df: pd.DataFrame, id_col: str, types: Mapping[str, str]) -> pd.DataFrame | None:
    if not types:
        return None
    feats = df.drop(columns=[id_col]).reset_index(drop=True)
    for c, t in types.items():
        if t.endswith("_seq"):  # parquet gives numpy arrays back; normalise to lists
            feats[c] = feats[c].map(lambda v: None if v is None else list(v))
    return feats
