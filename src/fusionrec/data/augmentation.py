"""Data augmentation for sequences and interactions.

Sequence operations (CL4SRec / CoSeRec) work on left-padded code arrays as SASRec uses them:
``(B, L)`` int arrays of item index + 1, 0 = padding, each row's items a contiguous block at the
right end. Every operation returns a new array of the same shape (left-padded again), is
vectorised over rows and draws only from the ``numpy.random.Generator`` it is given, so a seed
reproduces it. With ``n`` a row's number of items and ``rate`` the op's rate:

- ``crop``: keep a random contiguous run of ``max(1, floor(rate * n))`` items;
- ``mask``: replace ``floor(rate * n)`` random items by ``mask_code`` (a dedicated token);
- ``reorder``: shuffle a random contiguous window of ``floor(rate * n)`` items;
- ``substitute``: replace ``floor(rate * n)`` random items by their most correlated item — the
  item that co-occurs with it in the most users' training histories (ties: lowest index; an item
  that co-occurs with nothing is kept) — not by a random item.

:class:`SequenceAugmenter` applies a configured list of ops, one op drawn per row (CL4SRec) or
all in turn. :func:`augment_interactions` makes a new training :class:`Dataset` by edge dropout
and co-occurrence substitution of interactions (the input is never changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = [
    "AugmentConfig",
    "AugmentOp",
    "SequenceAugmenter",
    "augment_interactions",
    "cooccurrence_substitutes",
    "crop",
    "mask",
    "reorder",
    "substitute",
    "pack_sequences",
    "unpack_sequences",
]

OpKind = Literal["crop", "mask", "reorder", "substitute"]


class AugmentOp(BaseModel):
    """One sequence augmentation and its rate."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    kind: OpKind
    """crop (share of items kept), mask / substitute (share of items replaced), reorder
    (share of the sequence shuffled as one window)."""
    rate: float = Field(gt=0, le=1)
    """The op's share in (0, 1]."""


class AugmentConfig(BaseModel):
    """Sequence ops (``ops``, ``compose``) and interaction augmentation (``edge_dropout``,
    ``edge_substitute``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    ops: tuple[AugmentOp, ...] = ()
    """Sequence operations, e.g. ``[{kind: crop, rate: 0.6}, {kind: mask, rate: 0.3}]``."""
    compose: Literal["one", "all"] = "one"
    """'one': each sequence gets one op drawn uniformly from ``ops`` (CL4SRec); 'all': every op
    in the listed order."""
    edge_dropout: float = Field(0.0, ge=0, lt=1)
    """Interactions: share of interactions dropped (each user keeps ``min_per_user``)."""
    edge_substitute: float = Field(0.0, ge=0, le=1)
    """Interactions: share whose item is replaced by its most co-occurring item (skipped where
    the user already has that item)."""
    min_per_user: int = Field(1, ge=0)
    """Edge dropout never takes a user below this many interactions (or below what they had)."""
    substitute_mode: Literal["replace", "add"] = "replace"
    """'replace': a substituted interaction takes the original's place; 'add': the original is
    kept and the substitute is added beside it (more training pairs, none lost)."""


# ------------------------------------------------------------------ helpers
def _check_codes(seqs: np.ndarray) -> np.ndarray:
    seqs = np.asarray(seqs)
    if seqs.ndim != 2 or not np.issubdtype(seqs.dtype, np.integer):
        raise ConfigError(
            f"sequence augmentation needs a 2-d integer array of item codes, got {seqs.dtype} {seqs.shape}"
        )
    if seqs.size and seqs.min() < 0:
        raise ConfigError("item codes must be >= 0 (0 = padding)")
    return seqs.astype(np.int64, copy=False)


def _lengths(seqs: np.ndarray) -> np.ndarray:
    """Items per row; raises unless every row is left-padded (items contiguous at the right)."""
    valid = seqs > 0
    n = valid.sum(1)
    L = seqs.shape[1]
    expect = np.arange(L)[None, :] >= (L - n)[:, None]
    if not np.array_equal(valid, expect):
        bad = int(np.flatnonzero((valid != expect).any(1))[0])
        raise ConfigError(
            f"row {bad} is not left-padded (0 = padding must precede all items): {seqs[bad].tolist()}"
        )
    return n


def _check_rate(rate: float) -> float:
    if not 0 < rate <= 1:
        raise ConfigError(f"augmentation rate must be in (0, 1], got {rate}")
    return float(rate)


def _pick(n: np.ndarray, count: np.ndarray, L: int, rng: np.random.Generator) -> np.ndarray:
    """(B, L) bool: ``count[r]`` distinct random positions among row r's ``n[r]`` items."""
    keys = rng.random((len(n), L))
    keys[np.arange(L)[None, :] < (L - n)[:, None]] = np.inf  # padding is never picked
    ranks = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    return ranks < count[:, None]


def _window_start(L: int, n: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Column of the first cell of a uniformly placed k-item window inside each row's n items."""
    off = np.floor(rng.random(len(n)) * (n - k + 1)).astype(np.int64)
    return (L - n) + np.minimum(off, np.maximum(n - k, 0))


# --------------------------------------------------------------------- ops
def crop(seqs: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Keep a random contiguous run of ``max(1, floor(rate * n))`` items of each row."""
    seqs = _check_codes(seqs)
    rate = _check_rate(rate)
    n = _lengths(seqs)
    L = seqs.shape[1]
    k = np.where(n > 0, np.maximum(1, np.floor(rate * n + 1e-9).astype(np.int64)), 0)
    start = _window_start(L, n, k, rng)
    j = np.arange(L)[None, :] - (L - k)[:, None]  # index inside the kept run
    src = np.clip(start[:, None] + j, 0, L - 1)
    return np.where(j >= 0, np.take_along_axis(seqs, src, 1), 0)


def mask(seqs: np.ndarray, rate: float, rng: np.random.Generator, mask_code: int) -> np.ndarray:
    """Replace ``floor(rate * n)`` random items of each row by ``mask_code``."""
    seqs = _check_codes(seqs)
    rate = _check_rate(rate)
    if mask_code <= 0:
        raise ConfigError(f"mask_code must be > 0 (0 is padding), got {mask_code}")
    n = _lengths(seqs)
    hit = _pick(n, np.floor(rate * n + 1e-9).astype(np.int64), seqs.shape[1], rng)
    return np.where(hit, mask_code, seqs)


def reorder(seqs: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Shuffle a random contiguous window of ``floor(rate * n)`` items of each row."""
    seqs = _check_codes(seqs)
    rate = _check_rate(rate)
    n = _lengths(seqs)
    L = seqs.shape[1]
    k = np.floor(rate * n + 1e-9).astype(np.int64)
    start = _window_start(L, n, k, rng)
    col = np.arange(L)[None, :]
    inside = (col >= start[:, None]) & (col < (start + k)[:, None])
    # cells of the window sort among themselves at random, between the cells before and after
    key = np.where(inside, start[:, None] - 0.5 + rng.random(seqs.shape), col.astype(np.float64))
    return np.take_along_axis(seqs, np.argsort(key, axis=1, kind="stable"), 1)


def cooccurrence_substitutes(matrix: sp.spmatrix) -> np.ndarray:
    """For each item index, the other item sharing the most users in ``matrix`` (users x items);
    ties go to the lowest index; an item that co-occurs with no other item maps to itself."""
    x = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    x.data[:] = 1.0
    n_items = x.shape[1]
    c = (x.T @ x).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    out = np.arange(n_items, dtype=np.int64)
    if c.nnz == 0:
        return out
    rows = np.repeat(np.arange(n_items), np.diff(c.indptr))
    order = np.lexsort((c.indices, -c.data, rows))  # per row: most co-occurring, then lowest id
    first = order[np.r_[0, np.flatnonzero(np.diff(rows[order])) + 1]]
    out[rows[first]] = c.indices[first]
    return out


def _code_table(substitutes: np.ndarray, n_codes: int) -> np.ndarray:
    """Item-index substitutes as a code -> code table (0 and codes beyond the items map to themselves)."""
    table = np.arange(n_codes, dtype=np.int64)
    table[1 : len(substitutes) + 1] = np.asarray(substitutes, np.int64) + 1
    return table


def substitute(
    seqs: np.ndarray, rate: float, rng: np.random.Generator, substitutes: np.ndarray
) -> np.ndarray:
    """Replace ``floor(rate * n)`` random items of each row by ``substitutes[item]`` (item
    indices, e.g. :func:`cooccurrence_substitutes`); codes are item index + 1."""
    seqs = _check_codes(seqs)
    rate = _check_rate(rate)
    n = _lengths(seqs)
    subs = np.asarray(substitutes, dtype=np.int64)
    if seqs.size and seqs.max() > len(subs) + 1:
        raise ConfigError(f"item code {int(seqs.max())} is outside the {len(subs)} substitutes")
    table = _code_table(subs, max(len(subs) + 2, int(seqs.max(initial=0)) + 1))
    hit = _pick(n, np.floor(rate * n + 1e-9).astype(np.int64), seqs.shape[1], rng)
    return np.where(hit, table[seqs], seqs)


# ---------------------------------------------------------------- augmenter
class SequenceAugmenter:
    """Applies ``config.ops`` to padded code arrays.

    Args:
        config: the ops (``compose='one'``: one op per row drawn uniformly; ``'all'``: all).
        substitutes: item-index -> substitute item index (needed when an op is ``substitute``).
        mask_code: code written by ``mask`` (SASRec uses n_items + 1).
    """

    def __init__(
        self,
        config: AugmentConfig | dict,
        substitutes: np.ndarray | None = None,
        mask_code: int | None = None,
    ) -> None:
        self.config = config if isinstance(config, AugmentConfig) else AugmentConfig(**config)
        kinds = {op.kind for op in self.config.ops}
        if not kinds:
            raise ConfigError(
                "sequence augmentation needs at least one op (crop, mask, reorder, substitute)"
            )
        if "substitute" in kinds and substitutes is None:
            raise ConfigError(
                "the 'substitute' op needs item substitutes (cooccurrence_substitutes)"
            )
        if "mask" in kinds and (mask_code is None or mask_code <= 0):
            raise ConfigError("the 'mask' op needs a mask_code > 0 (e.g. n_items + 1)")
        self.substitutes = None if substitutes is None else np.asarray(substitutes, np.int64)
        self.mask_code = mask_code

    def _apply(self, op: AugmentOp, seqs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if op.kind == "crop":
            return crop(seqs, op.rate, rng)
        if op.kind == "mask":
            return mask(seqs, op.rate, rng, self.mask_code)
        if op.kind == "reorder":
            return reorder(seqs, op.rate, rng)
        return substitute(seqs, op.rate, rng, self.substitutes)

    def __call__(self, seqs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An augmented view of ``seqs`` ((B, L) left-padded codes); ``seqs`` is not changed."""
        seqs = _check_codes(seqs)
        ops = self.config.ops
        if self.config.compose == "all":
            out = seqs
            for op in ops:
                out = self._apply(op, out, rng)
            return out
        choice = rng.integers(0, len(ops), size=len(seqs))
        out = seqs.copy()
        for k, op in enumerate(ops):
            rows = np.flatnonzero(choice == k)
            if len(rows):
                out[rows] = self._apply(op, seqs[rows], rng)
        return out


def pack_sequences(seqs: Sequence[np.ndarray], offset: int = 1) -> np.ndarray:
    """Variable-length item-index sequences -> left-padded (len, longest) codes (index + offset)."""
    L = max((len(s) for s in seqs), default=0)
    out = np.zeros((len(seqs), max(L, 1)), dtype=np.int64)
    for r, s in enumerate(seqs):
        if len(s):
            out[r, out.shape[1] - len(s) :] = np.asarray(s, np.int64) + offset
    return out


def unpack_sequences(
    codes: np.ndarray, offset: int = 1, drop: Sequence[int] = ()
) -> list[np.ndarray]:
    """Left-padded codes -> item-index sequences; codes in ``drop`` (e.g. a mask code) are removed."""
    out = []
    for row in np.asarray(codes):
        keep = row > 0
        for d in drop:
            keep &= row != d
        out.append(row[keep] - offset)
    return out


# --------------------------------------------------------------- interactions
def augment_interactions(
    dataset: Dataset, config: AugmentConfig | dict, rng: np.random.Generator
) -> Dataset:
    """A new training Dataset: ``edge_dropout`` of the interactions dropped (users keep at least
    ``min_per_user``) and ``edge_substitute`` of them re-pointed to their item's most co-occurring
    item (kept as is when the user already has it). Ratings and timestamps travel with each row;
    id maps, features, text and KG are shared. ``dataset`` is not changed."""
    c = config if isinstance(config, AugmentConfig) else AugmentConfig(**config)
    if c.edge_dropout == 0 and c.edge_substitute == 0:
        raise ConfigError("augment_interactions: set edge_dropout and/or edge_substitute > 0")
    users = dataset.user_idx
    items = dataset.item_idx.copy()
    n = dataset.n_interactions
    rows = np.arange(n)  # source row of each output interaction (rating, timestamp)
    if c.edge_substitute > 0 and n:
        subs = cooccurrence_substitutes(dataset.matrix("csr"))
        hit = rng.random(n) < c.edge_substitute
        cand = subs[items]
        seen = dataset.matrix("csr")
        has = np.asarray(seen[users, cand]).ravel() > 0
        hit &= ~has & (cand != items)
        if c.substitute_mode == "add":
            # a substitute chosen for several of a user's items is added once
            pairs = np.unique(np.stack([users[hit], cand[hit]], 1), axis=0, return_index=True)[1]
            extra = np.flatnonzero(hit)[np.sort(pairs)]
            users = np.concatenate([users, users[extra]])
            items = np.concatenate([items, cand[extra]])
            rows = np.concatenate([np.arange(n), extra])
            n = len(users)
        else:
            items[hit] = cand[hit]
    keep = np.ones(n, dtype=bool)
    if c.edge_dropout > 0 and n:
        keep = rng.random(n) >= c.edge_dropout
        # give back dropped rows (in random order) to users left below min_per_user
        order = rng.permutation(n)
        dropped = order[~keep[order]]
        kept_per_user = np.bincount(users[keep], minlength=dataset.n_users)
        need = np.minimum(c.min_per_user, dataset.user_activity()) - kept_per_user
        if (need > 0).any():
            du = users[dropped]
            srt = np.argsort(du, kind="stable")
            du_s = du[srt]
            rank = np.arange(len(du_s)) - np.searchsorted(du_s, du_s)  # rank within its user
            back = dropped[srt][rank < np.maximum(need, 0)[du_s]]
            keep[back] = True
    sel = np.flatnonzero(keep)
    src = rows[sel]
    return replace(
        dataset,
        user_idx=users[sel],
        item_idx=items[sel],
        rating=None if dataset.rating is None else dataset.rating[src],
        timestamp=None if dataset.timestamp is None else dataset.timestamp[src],
        name=f"{dataset.name}+aug",
        _cache={},
    )
