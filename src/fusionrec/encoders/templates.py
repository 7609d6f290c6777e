"""Item text templates: turn an item's fields into one sentence for a text encoder.

A template is a ``str.format`` pattern over named slots. The slots every item has:

- ``{title}``: the display title (``title``/``movie_title``/``name``/``item_name`` column);
- ``{year}``: a release year (``year``/``release_year`` column);
- ``{genres}``: genres/categories joined by ", " (``genres``/``genre``/``class``/``category``);
- ``{text}``: the dataset's other text fields ("field: value" joined by "; ");
- ``{kg}``: knowledge-graph facts that are readable (see :func:`kg_facts`);
- any item feature column by its own name (lists joined by ", ").

Empty slots are dropped together with the literal text around them up to the next slot, so
``"{title} ({year})"`` renders ``"Heat"`` when the year is missing, not ``"Heat ()"``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = ["DEFAULT_TEMPLATE", "render_item_texts", "render_template", "template_slots", "kg_facts"]

#: The template used when none is given.
DEFAULT_TEMPLATE = "{title} ({year}). Genres: {genres}. {text}"

_TITLE = ("title", "movie_title", "name", "item_name")
_YEAR = ("year", "release_year")
_GENRES = ("genres", "genre", "class", "category", "categories")
# Freebase/Wikidata-style opaque ids (m.0abc12, Q42) are not readable text
_OPAQUE = re.compile(r"^(m\.[0-9a-z_]+|g\.[0-9a-z_]+|Q\d+|\d+)$")


def template_slots(template: str) -> list[str]:
    """Names of the ``{slots}`` in ``template`` (raises ConfigError on a malformed pattern)."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ConfigError(f"item text template {template!r} is malformed: {e}") from None
    for n in names:
        if not n.isidentifier():
            raise ConfigError(f"item text template {template!r}: slot {{{n}}} must be a plain name")
    return names


def render_template(template: str, values: dict[str, str]) -> str:
    """Fill ``template`` from ``values`` (missing slots render empty), then tidy what empty
    slots leave behind: empty brackets, a label with no value ("Genres: ."), repeated
    punctuation and whitespace."""
    text = template.format_map(_Blank(values))
    for _ in range(2):
        text = re.sub(r"[(\[]\s*[)\]]", "", text)
        text = re.sub(r"(^|(?<=[.;!?]))\s*[A-Z][A-Za-z ]{0,24}:\s*(?=[.;,]|$)", "", text)
        text = re.sub(r"\s+", " ", text)
        text = re.sub(r"\s+([.,;:!?])", r"\1", text)
        text = re.sub(r"([.;,])(\s*[.;,])+", r"\1", text)
    return text.strip(" ;,.")


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and np.isnan(v):
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(str(x) for x in v if str(x))
    s = str(v).strip()
    return "" if s.lower() in ("nan", "none", "<na>") else s


def _first(columns: Sequence[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def kg_facts(dataset: Dataset, max_facts: int = 8) -> list[str]:
    """Readable KG facts per item: "relation: tail" where the tail is readable text, and the
    bare relation name ("award won") where the tail is an opaque id (Freebase mids are not
    readable, so only the relation says something). Empty strings when there is no KG."""
    kg = dataset.kg
    if kg is None:
        return [""] * dataset.n_items
    ent_to_item = np.full(len(kg.entities), -1, dtype=np.int64)
    linked = np.flatnonzero(kg.item_entity >= 0)
    ent_to_item[kg.item_entity[linked]] = linked
    rel_names = [_relation_label(r) for r in kg.relations.ids]
    ent_ids = kg.entities.ids
    facts: list[dict[str, None]] = [{} for _ in range(dataset.n_items)]
    heads = ent_to_item[kg.head]
    for h_item, r, t in zip(heads, kg.relation, kg.tail, strict=True):
        if h_item < 0:
            continue
        d = facts[h_item]
        if len(d) >= max_facts:
            continue
        tail = str(ent_ids[t])
        d[rel_names[r] if _OPAQUE.match(tail) else f"{rel_names[r]}: {tail}"] = None
    return [", ".join(d) for d in facts]


def _relation_label(rel: str) -> str:
    # "film.film.award_won" -> "award won"; "directed_by" -> "directed by"
    return str(rel).rsplit(".", 1)[-1].replace("_", " ")


def render_item_texts(dataset: Dataset, template: str | None = None) -> list[str]:
    """One text per item index, rendered from ``template`` (DEFAULT_TEMPLATE when None).

    Raises ConfigError when the template names a slot that is neither a standard slot nor an
    item feature column. Items with nothing to say render as their external id.
    """
    template = template or DEFAULT_TEMPLATE
    slots = template_slots(template)
    feats = dataset.item_features
    cols = [] if feats is None else list(feats.columns)
    standard = {"title", "year", "genres", "text", "kg"}
    unknown = [s for s in slots if s not in standard and s not in cols]
    if unknown:
        raise ConfigError(
            f"item text template uses unknown slot(s) {unknown}; available: "
            f"{sorted(standard | set(cols))}"
        )
    n = dataset.n_items
    columns: dict[str, list[str]] = {}
    used: set[str] = set()
    for slot, cands in (("title", _TITLE), ("year", _YEAR), ("genres", _GENRES)):
        c = _first(cols, cands)
        if slot in slots and c is not None and c not in slots:
            columns[slot] = [_cell(v) for v in feats[c]]
            used.add(c)
    for s in slots:
        if s in cols:
            columns[s] = [_cell(v) for v in feats[s]]
            used.add(s)
    if "text" in slots:
        other = tuple(
            f for f in dataset.text_fields if f not in used and f not in _TITLE + _YEAR + _GENRES
        )
        columns["text"] = dataset.item_text(other) if other else [""] * n
        columns["text"] = [t.replace("; ", ". ") if t else "" for t in columns["text"]]
    if "kg" in slots:
        columns["kg"] = [f"Facts: {f}" if f else "" for f in kg_facts(dataset)]
    # years like "1995.0" read better as "1995"
    if "year" in columns:
        columns["year"] = [y[:-2] if y.endswith(".0") else y for y in columns["year"]]
    ids = dataset.items.ids
    out = []
    for i in range(n):
        text = render_template(template, {k: v[i] for k, v in columns.items()})
        out.append(text or str(ids[i]))
    return out
