"""Warm start: initialise a torch model's fresh module from a saved model of the same class.

Parameters whose first dimension indexes users or items are mapped row by row through the
external ids (a user or item present in both keeps its vector; a new one keeps the fresh
initialisation, exactly as in a fit from scratch); every other parameter is copied and must
have the same shape (a different architecture is a :class:`ModelStateError` naming it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fusionrec.data.idmap import IdMap
from fusionrec.errors import ModelStateError

__all__ = ["IdTable", "WarmStartReport", "id_tables", "warm_start_module", "map_rows"]


@dataclass(frozen=True)
class IdTable:
    """A parameter whose rows ``offset .. offset + n - 1`` belong to users or items."""

    kind: str  # "user" | "item"
    offset: int = 0


@dataclass(frozen=True)
class WarmStartReport:
    """What a warm start copied: parameters, and rows matched per id kind."""

    source: str
    copied: tuple[str, ...]
    matched: dict[str, int]
    new: dict[str, int]


def id_tables(
    state: dict[str, torch.Tensor], n_users: int, n_items: int
) -> dict[str, IdTable]:
    """Default guess of the id-indexed parameters: first dimension n_items (+1 for a padding
    row 0 when the name says 'item') or n_users; names break a tie when n_users == n_items."""
    out: dict[str, IdTable] = {}
    for name, t in state.items():
        if t.dim() < 1:
            continue
        rows, low = t.shape[0], name.lower()
        is_item, is_user = "item" in low, "user" in low
        if rows == n_items and (is_item or rows != n_users or not is_user):
            out[name] = IdTable("item")
        elif rows == n_users and (is_user or not is_item):
            out[name] = IdTable("user")
        elif rows == n_items + 1 and is_item:
            out[name] = IdTable("item", offset=1)
    return out


def map_rows(old: IdMap, new: IdMap) -> tuple[np.ndarray, np.ndarray]:
    """(new indices, old indices) of the ids present in both maps."""
    old_idx = old.to_idx(np.asarray(new.ids, dtype=object), unknown="mask")
    keep = old_idx >= 0
    return np.flatnonzero(keep), old_idx[keep]


def warm_start_module(
    module: torch.nn.Module,
    source: torch.nn.Module,
    tables: dict[str, IdTable],
    old_maps: dict[str, IdMap],
    new_maps: dict[str, IdMap],
    source_name: str | Path = "",
) -> WarmStartReport:
    """Copy ``source``'s parameters and buffers into ``module`` in place (see module doc)."""
    new_sd, old_sd = module.state_dict(), source.state_dict()
    missing = sorted(set(new_sd) - set(old_sd))
    if missing:
        raise ModelStateError(
            f"{source_name}: cannot warm-start, the saved model lacks {', '.join(missing[:5])}"
        )
    matched: dict[str, int] = {}  # per id kind that has a table: rows matched / new
    fresh: dict[str, int] = {}
    copied = []
    pairs = {k: map_rows(old_maps[k], new_maps[k]) for k in new_maps}
    with torch.no_grad():
        for name, dst in new_sd.items():
            src = old_sd[name].to(dst.device, dst.dtype)
            table = tables.get(name)
            if table is not None and src.shape[0] != len(old_maps[table.kind]) + table.offset:
                table = None  # guessed from the shape alone, but not id-indexed in the source
            if table is None:
                if src.shape != dst.shape:
                    raise ModelStateError(
                        f"{source_name}: parameter {name!r} has shape {tuple(src.shape)}, the "
                        f"new model's is {tuple(dst.shape)} (warm start needs the same "
                        "architecture: embedding sizes, layers, ...)"
                    )
                dst.copy_(src)
            else:
                if src.shape[1:] != dst.shape[1:]:
                    raise ModelStateError(
                        f"{source_name}: {table.kind} table {name!r} has rows of shape "
                        f"{tuple(src.shape[1:])}, the new model's are {tuple(dst.shape[1:])}"
                    )
                o = table.offset
                dst[:o] = src[:o]  # padding rows
                ni, oi = pairs[table.kind]
                dst[torch.as_tensor(ni + o)] = src[torch.as_tensor(oi + o)]
                matched[table.kind] = len(ni)
                fresh[table.kind] = len(new_maps[table.kind]) - len(ni)
            copied.append(name)
    return WarmStartReport(str(source_name), tuple(copied), matched, fresh)
