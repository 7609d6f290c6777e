"""Negative samplers of the models that draw negatives, built from their ``curriculum`` setting.

Every negative-sampling model calls :func:`negative_sampler` once per fit (in ``_prepare``) and
:func:`advance_epoch` at the start of each epoch's ``batches`` (or :func:`epoch_sampler`, both
in one call, from ``batches``); without a curriculum this is
the uniform :class:`~fusionrec.data.samplers.NegativeSampler` and ``advance_epoch`` changes
nothing. With ``curriculum.difficulty='teacher'`` the teacher named in the curriculum is
fitted here from the registry on the model's training data, and each user's top
``teacher_pool`` unseen items (by the teacher) make the hard pool.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import NegativeSampler
from fusionrec.errors import ConfigError
from fusionrec.ranking import mask_seen, topk
from fusionrec.training.curriculum import (
    CurriculumConfig,
    CurriculumNegativeSampler,
    make_negative_sampler,
)

__all__ = ["advance_epoch", "epoch_sampler", "negative_sampler", "teacher_top_items"]


def teacher_top_items(
    teacher: Any,
    seen: sp.csr_matrix,
    n: int,
    columns: np.ndarray | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """(n_users, n) each user's highest-scored unseen items by a fitted ``teacher``.

    With ``columns`` (item indices) only those items are ranked and the result holds positions
    into ``columns`` (the index space of a sampler built on ``seen[:, columns]``)."""
    n_users = seen.shape[0]
    width = seen.shape[1] if columns is None else len(columns)
    n = min(n, width)
    out = np.empty((n_users, n), np.int64)
    for s in range(0, n_users, batch_size):
        rows = np.arange(s, min(s + batch_size, n_users))
        sc = np.array(teacher.score_indices(rows), dtype=np.float64)
        sc[~np.isfinite(sc)] = -np.inf
        mask_seen(sc, rows, seen)
        if columns is not None:
            sc = sc[:, columns]
        out[s : s + len(rows)] = topk(sc, n)[0]
    return out


def negative_sampler(
    model: Any,
    dataset: Dataset,
    rng: np.random.Generator,
    columns: np.ndarray | None = None,
) -> NegativeSampler | CurriculumNegativeSampler:
    """The sampler ``model`` draws its negatives with over ``dataset`` (restricted to the item
    indices ``columns`` when given), following ``model.config.curriculum``; resets the
    model's curriculum epoch. ``rng`` is drawn from (the teacher's seed) only for a teacher
    curriculum, so a model without one keeps its random stream."""
    cur: CurriculumConfig | None = getattr(model.config, "curriculum", None)
    m = dataset.matrix("csr")
    pos = m if columns is None else m[:, columns].tocsr()
    model._neg_epoch = 0
    top = None
    if cur is not None and cur.difficulty == "teacher":
        from fusionrec.models.registry import get_model

        if cur.teacher == model.name:
            raise ConfigError(f"curriculum teacher {cur.teacher!r} is the model itself")
        teacher = get_model(cur.teacher)(**cur.teacher_params).fit(dataset, seed=int(rng.integers(2**31)))
        top = teacher_top_items(teacher, m, cur.teacher_pool, columns)
    return make_negative_sampler(pos, cur, top)


def advance_epoch(model: Any, sampler: NegativeSampler | CurriculumNegativeSampler) -> int:
    """Count one more epoch for ``model`` and tell ``sampler``; returns the epoch (1-based)."""
    model._neg_epoch = getattr(model, "_neg_epoch", 0) + 1
    sampler.set_epoch(model._neg_epoch)
    return model._neg_epoch


def epoch_sampler(
    model: Any, dataset: Dataset, rng: np.random.Generator
) -> NegativeSampler | CurriculumNegativeSampler:
    """From ``batches``: the sampler of this fit (built on the first epoch, kept while the
    dataset and the model's module stay the same, through weak references) set to the next
    epoch."""
    key = getattr(model, "_epoch_sampler", None)
    module = getattr(model, "module_", None)
    if key is None or key[0]() is not dataset or (module is not None and key[1]() is not module):
        sampler = negative_sampler(model, dataset, rng)
        mref = weakref.ref(module) if module is not None else (lambda: None)
        key = (weakref.ref(dataset), mref, sampler)
        model._epoch_sampler = key
    advance_epoch(model, key[2])
    return key[2]
