"""Sampled evaluation protocols (RecBole 1.2.1's ``uni100`` / ``pop100``).

Papers often rank each held-out item against a sample of unseen items instead of the whole
catalogue. RecBole 1.2.1 defines the protocol (``recbole/sampler/sampler.py`` ``Sampler`` and
``recbole/data/dataloader/general_dataloader.py`` ``NegSampleEvalDataLoader``) as:

- a user with P held-out positives gets ``P * N`` negatives, drawn **with replacement** and
  re-drawn while they hit an item the user has in *any* phase up to the evaluated one (train,
  valid and test when testing; train and valid when validating);
- ``uni``: uniform over all items; ``pop``: proportional to the item's number of interactions
  in all the splits given (RecBole's ``alpha`` = 1);
- scores are scattered into a full item row that is -inf elsewhere, so duplicate negatives
  count once, and the top-k of that row is scored with the usual metrics (no other masking:
  the negatives already avoid the user's items).

Sampled metrics are not comparable to full-ranking metrics (Krichene & Rendle, 2020): every
output of a sampled protocol is labelled with it (``EvalResult.protocol``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

__all__ = ["SampledProtocol", "parse_protocol", "sample_negatives", "candidate_mask"]

_SAMPLED = re.compile(r"^(uni|pop)(\d+)$")


@dataclass(frozen=True)
class SampledProtocol:
    """``distribution`` ('uni' or 'pop') and ``n`` negatives per held-out positive."""

    distribution: Literal["uni", "pop"]
    n: int

    @property
    def name(self) -> str:
        return f"{self.distribution}{self.n}"


def parse_protocol(spec: str) -> SampledProtocol | None:
    """'full' -> None (full ranking); 'uni100' / 'pop100' (RecBole ``mode`` strings, any N >= 1)
    -> a :class:`SampledProtocol`; anything else is a ValueError naming the accepted forms."""
    s = str(spec).strip().lower()
    if s == "full":
        return None
    m = _SAMPLED.match(s)
    if m is None or int(m.group(2)) < 1:
        raise ValueError(f"evaluation protocol {spec!r} must be 'full', 'uniN' or 'popN' (e.g. uni100, pop100)")
    return SampledProtocol(m.group(1), int(m.group(2)))  # type: ignore[arg-type]


def _keys(m: sp.csr_matrix) -> np.ndarray:
    """Sorted user * n_items + item keys of a csr matrix's non-zeros."""
    r = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return np.sort(r * m.shape[1] + m.indices.astype(np.int64))


def _isin_sorted(q: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(keys):
        return np.zeros(q.shape, bool)
    pos = np.searchsorted(keys, q)
    pos[pos >= len(keys)] = 0
    return keys[pos] == q


def sample_negatives(
    protocol: SampledProtocol,
    users: np.ndarray,
    n_pos: np.ndarray,
    used: sp.csr_matrix,
    popularity: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Negatives for each of ``users``: ``n_pos[u] * protocol.n`` items none of which is in the
    user's row of ``used`` (users x items, everything the user has in the phases so far).

    ``popularity`` (interactions per item) weights the 'pop' draw; items with zero count are
    never drawn there. Returns ``(owner, items)``: flat arrays, ``owner[j]`` the position in
    ``users`` that negative ``items[j]`` belongs to. A user who has every candidate item raises
    a ValueError (RecBole refuses the same case)."""
    users = np.asarray(users, dtype=np.int64)
    n_items = used.shape[1]
    counts = np.asarray(n_pos, dtype=np.int64) * protocol.n
    if protocol.distribution == "pop":
        w = np.asarray(popularity, dtype=np.float64)
        if w.shape != (n_items,) or w.sum() <= 0:
            raise ValueError("pop sampling needs a non-zero popularity count per item")
        cdf = np.cumsum(w / w.sum())
        cdf[-1] = 1.0

        def draw(size: int) -> np.ndarray:
            return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_items - 1)

        support = w > 0
    else:

        def draw(size: int) -> np.ndarray:
            return rng.integers(0, n_items, size)

        support = np.ones(n_items, bool)
    sub = used[users].tocsr()
    sub.sum_duplicates()
    row_of = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    free = support.sum() - np.bincount(row_of, weights=support[sub.indices], minlength=len(users))
    if np.any((free <= 0) & (counts > 0)):
        bad = users[(free <= 0) & (counts > 0)][0]
        raise ValueError(f"user index {bad} has interacted with every item {protocol.distribution} sampling can draw: no negatives exist")
    keys = _keys(sub)
    owner = np.repeat(np.arange(len(users), dtype=np.int64), counts)
    items = draw(len(owner))
    todo = np.flatnonzero(_isin_sorted(owner * n_items + items, keys))
    while len(todo):  # re-draw the collisions only, as RecBole does
        items[todo] = draw(len(todo))
        todo = todo[_isin_sorted(owner[todo] * n_items + items[todo], keys)]
    return owner, items.astype(np.int64)


def candidate_mask(n_rows: int, n_items: int, truth_rows: sp.csr_matrix, owner: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Bool (n_rows, n_items): True at each row's held-out positives and sampled negatives."""
    mask = np.zeros((n_rows, n_items), bool)
    r = np.repeat(np.arange(n_rows), np.diff(truth_rows.indptr))
    mask[r, truth_rows.indices] = True
    mask[owner, items] = True
    return mask
