"""RecBole atomic files: ``<name>.inter`` plus optional ``.user``, ``.item``, ``.kg``, ``.link``.

Each file is tab-separated; its first line is a typed header ``field:type`` with types
``token``, ``token_seq`` (space-separated tokens), ``float`` and ``float_seq`` (space-separated
numbers). Field names may carry RecBole's suffixes (``user_id:token``); we keep the name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data._textio import DelimitedText, first_bad, read_delimited, to_float
from fusionrec.data.dataset import FEATURE_TYPES, Dataset
from fusionrec.data.validation import check_ids, check_unique
from fusionrec.errors import DataFormatError

__all__ = ["read_atomic", "load_atomic", "ATOMIC_SUFFIXES"]

log = logging.getLogger(__name__)

#: The atomic file kinds this loader understands.
ATOMIC_SUFFIXES = (".inter", ".user", ".item", ".kg", ".link")

#: Item fields treated as text (besides any name containing "title" or "desc").
_TEXT_NAMES = (
    "class",
    "genre",
    "genres",
    "description",
    "overview",
    "plot",
    "tags",
    "categories",
    "brand",
)


def _parse_header(src: DelimitedText) -> list[tuple[str, str]]:
    """Validate the typed header; errors name the header line (found again only on error)."""
    fields: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in src.header or []:
        if ":" not in raw:
            raise DataFormatError(
                src.path,
                _header_line(src.path),
                f"header field {raw!r} has no type; expected 'name:type' with type one of {', '.join(FEATURE_TYPES)}",
            )
        name, typ = raw.rsplit(":", 1)
        name, typ = name.strip(), typ.strip()
        if not name:
            raise DataFormatError(
                src.path, _header_line(src.path), f"header field {raw!r} has an empty name"
            )
        if typ not in FEATURE_TYPES:
            raise DataFormatError(
                src.path,
                _header_line(src.path),
                f"header field {name!r} has unknown type {typ!r}; expected one of {', '.join(FEATURE_TYPES)}",
            )
        if name in seen:
            raise DataFormatError(
                src.path, _header_line(src.path), f"duplicate header field {name!r}"
            )
        seen.add(name)
        fields.append((name, typ))
    return fields


def _float_columns(header: list[str] | None) -> list[int]:
    return [i for i, f in enumerate(header or []) if f.rsplit(":", 1)[-1].strip() == "float"]


def _header_line(path: Path) -> int:
    with open(path, "rb") as f:
        for i, ln in enumerate(f, start=1):
            if ln.strip():
                return i
    return 1


def _float_seq(col: pd.Series, src: DelimitedText, field: str) -> list[list[float]]:
    parts = col.str.split()
    lengths = parts.map(len).to_numpy()
    flat = parts.explode()
    flat = flat[flat.notna()].astype(str)
    nums = pd.to_numeric(flat, errors="coerce").to_numpy(np.float64)
    bad = np.isnan(nums) & flat.str.lower().ne("nan").to_numpy()
    b = first_bad(bad)
    if b is not None:
        row = int(np.searchsorted(np.cumsum(lengths), b, side="right"))
        raise DataFormatError(
            src.path,
            src.line_of(row),
            f"field {field!r} (float_seq): expected space-separated numbers, got {flat.iloc[b]!r}",
        )
    bounds = np.cumsum(lengths)[:-1]
    return [a.tolist() for a in np.split(nums, bounds)] if len(lengths) else []


def read_atomic(
    path: str | os.PathLike, *, require_rows: bool = True, unique: str | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read one atomic file into a typed table and its ``{field: type}`` map.

    ``token`` columns stay strings, ``float`` become float64 (empty = NaN), ``token_seq``
    lists of str, ``float_seq`` lists of float. ``unique`` names a field whose values must
    not repeat (the id of a ``.user``/``.item`` file).

    Raises:
        DataFormatError: naming the file and line, for an empty file, a header field without
            ``:type``, an unknown type, a duplicate field, a line with the wrong number of
            fields, or a non-number in a ``float``/``float_seq`` field.
    """
    path = Path(path)
    src = read_delimited(
        path,
        "\t",
        header=True,
        require_rows=require_rows,
        expect="one value per header field",
        numeric=_float_columns,
    )
    fields = _parse_header(src)
    out: dict[str, object] = {}
    for i, (name, typ) in enumerate(fields):
        col = src.frame[i]
        if typ == "token":
            if name.endswith("_id"):
                check_ids(col, path=path, field=name, line_of=src.line_of)
            if name == unique:
                check_unique(col, path=path, field=name, line_of=src.line_of)
            out[name] = col.to_numpy(dtype=object)
        elif typ == "float":
            out[name] = to_float(col, src, name)
        elif typ == "token_seq":
            out[name] = [v.split() for v in col.tolist()]
        else:
            out[name] = _float_seq(col, src, name)
    frame = pd.DataFrame(out, index=pd.RangeIndex(len(src.frame)))
    return frame, dict(fields)


def _find_name(folder: Path, name: str | None) -> str:
    if name is not None:
        if not (folder / f"{name}.inter").exists():
            raise DataFormatError(
                folder / f"{name}.inter", None, "file not found (the .inter file is required)"
            )
        return name
    inters = sorted(p.stem for p in folder.glob("*.inter"))
    if not inters:
        raise DataFormatError(folder, None, "no RecBole atomic '<name>.inter' file in this folder")
    if len(inters) > 1:
        raise DataFormatError(
            folder, None, f"several .inter files ({', '.join(inters)}); pass name="
        )
    return inters[0]


def _need(frame: pd.DataFrame, path: Path, cols: tuple[str, ...]) -> None:
    for c in cols:
        if c not in frame.columns:
            raise DataFormatError(
                path,
                _header_line(path),
                f"header has no field {c!r} (fields: {', '.join(frame.columns)})",
            )


def _is_text(name: str, typ: str) -> bool:
    low = name.lower()
    return typ in ("token", "token_seq") and ("title" in low or "desc" in low or low in _TEXT_NAMES)


def load_atomic(folder: str | os.PathLike, name: str | None = None) -> Dataset:
    """Load a RecBole atomic dataset folder into a :class:`Dataset`.

    Args:
        folder: the folder holding ``<name>.inter`` and optional ``.user``, ``.item``,
            ``.kg`` (head_id, relation_id, tail_id) and ``.link`` (item_id, entity_id).
        name: the dataset name (file stem); found automatically when the folder has one ``.inter``.

    Fields ``user_id``, ``item_id``, ``rating`` and ``timestamp`` of ``.inter`` are used; other
    interaction fields are ignored (logged). Item features keep their atomic types; when the
    item table has a title-like field (``movie_title``) but no ``title``, a readable ``title``
    string (tokens joined by spaces) is added so :meth:`Dataset.item_titles` finds it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, None, "not a folder")
    name = _find_name(folder, name)
    ipath = folder / f"{name}.inter"
    inter, itypes = read_atomic(ipath)
    _need(inter, ipath, ("user_id", "item_id"))
    cols = ["user_id", "item_id"]
    for c in ("rating", "timestamp"):
        if c in inter.columns:
            if itypes[c] != "float":
                raise DataFormatError(
                    ipath, _header_line(ipath), f"field {c!r} must have type float, has {itypes[c]}"
                )
            cols.append(c)
    ignored = [c for c in inter.columns if c not in cols]
    if ignored:
        log.info("%s: ignoring interaction fields %s", ipath.name, ignored)
    for c in ("user_id", "item_id"):
        if itypes[c] != "token":
            raise DataFormatError(
                ipath, _header_line(ipath), f"field {c!r} must have type token, has {itypes[c]}"
            )
    inter = inter[cols]

    users = utypes = None
    upath = folder / f"{name}.user"
    if upath.exists():
        users, utypes = read_atomic(upath, require_rows=False, unique="user_id")
        _need(users, upath, ("user_id",))
        utypes.pop("user_id")

    items = ityp = None
    text_fields: list[str] = []
    mpath = folder / f"{name}.item"
    if mpath.exists():
        items, ityp = read_atomic(mpath, require_rows=False, unique="item_id")
        _need(items, mpath, ("item_id",))
        ityp.pop("item_id")
        text_fields = [c for c, t in ityp.items() if _is_text(c, t)]
        if "title" not in items.columns:
            tcol = next((c for c in text_fields if "title" in c.lower()), None)
            if tcol is not None:
                vals = items[tcol]
                items.insert(1, "title", [" ".join(v) if isinstance(v, list) else v for v in vals])
                ityp = {"title": "token", **ityp}
                text_fields = ["title"] + [c for c in text_fields if c != tcol]

    kg_triples = kg_link = None
    kpath, lpath = folder / f"{name}.kg", folder / f"{name}.link"
    if kpath.exists() or lpath.exists():
        if not (kpath.exists() and lpath.exists()):
            missing = lpath if kpath.exists() else kpath
            raise DataFormatError(
                missing,
                None,
                "file not found: a KG needs both .kg (triples) and .link (item -> entity)",
            )
        kg_triples, _ = read_atomic(kpath)
        _need(kg_triples, kpath, ("head_id", "relation_id", "tail_id"))
        kg_link, _ = read_atomic(lpath)
        _need(kg_link, lpath, ("item_id", "entity_id"))
        known = set(inter["item_id"].tolist()) | (
            set(items["item_id"].tolist()) if items is not None else set()
        )
        unknown = ~kg_link["item_id"].isin(known).to_numpy()
        if unknown.any():
            log.warning(
                "%s: %d of %d links name items not in the dataset; they are ignored (first: %r)",
                lpath.name,
                int(unknown.sum()),
                len(kg_link),
                kg_link["item_id"].iloc[int(np.flatnonzero(unknown)[0])],
            )
        dup = kg_link["item_id"].duplicated().to_numpy()
        r = first_bad(dup)
        if r is not None:
            raise DataFormatError(
                lpath, _data_line(lpath, r), f"item {kg_link['item_id'].iloc[r]!r} is linked twice"
            )

    return Dataset.from_frames(
        inter,
        users=users,
        items=items,
        kg_triples=kg_triples,
        kg_link=kg_link,
        user_feature_types=utypes,
        item_feature_types=ityp,
        text_fields=tuple(text_fields),
        name=name,
    )


def _data_line(path: Path, row: int) -> int:
    """Line number of data row ``row`` (0-based) in an atomic file (header = first non-blank line)."""
    src = read_delimited(path, "\t", header=True)
    return src.line_of(row)
