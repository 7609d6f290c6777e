"""Curriculum learning and progressive optimisation.

- :func:`pacing` — the share of hard examples at an epoch under a pacing schedule.
- :class:`CurriculumConfig` / :class:`CurriculumNegativeSampler` — a negative-sampling
  curriculum for pairwise (BPR-style) models: early epochs draw negatives uniformly (mostly
  obscure items: easy to tell apart from a positive), later epochs draw a growing share of
  *hard* negatives — popular items the user has not interacted with (``difficulty="popularity"``)
  or the items a teacher model ranks highest among the user's unseen items
  (``difficulty="teacher"``). Same interface as ``NegativeSampler.sample`` plus ``set_epoch``.
  On a random split the most popular unseen items, and the teacher's very top unseen items,
  are often true positives held out for valid/test (false negatives): ``skip_top`` leaves
  the most popular items (or each user's top teacher items) out of the hard pool, so hard
  negatives come from a band of ranks below the very top. On ml-100k (RS 8:1:1) drawing from
  the very top hurt NDCG@10 badly; skipping the top ~5% of the catalogue made the
  curriculum match or beat uniform negatives on the validation split.
- :class:`CurriculumSettings` — the ``curriculum`` field every negative-sampling model's config
  inherits (BPR, LightGCN, NeuMF, lm_mf, lm_lightgcn, CKE, KGAT, DeepFM, multitask, distill), and
  :func:`make_negative_sampler`, which turns it into a sampler (``fusionrec.models.negatives``
  fits the teacher of ``difficulty='teacher'`` from the registry).
- :class:`ProgressiveUnfreezing` — a Trainer callback that freezes named parameter groups of a
  module and unfreezes them at given epochs (defined in ``fusionrec.training.unfreeze`` so the
  Trainer can build it from ``TrainConfig.progressive_unfreeze``; re-exported here).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fusionrec.data.samplers import NegativeSampler
from fusionrec.errors import ConfigError
from fusionrec.training.unfreeze import ProgressiveUnfreezing

__all__ = [
    "CurriculumConfig",
    "CurriculumNegativeSampler",
    "CurriculumSettings",
    "make_negative_sampler",
    "pacing",
    "skipped_ranks",
    "ProgressiveUnfreezing",
]


class CurriculumConfig(BaseModel):
    """A negative-sampling curriculum (easy -> hard)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    difficulty: Literal["popularity", "teacher"] = "popularity"
    """What makes a negative hard: its popularity, or a teacher model's score for the user."""
    pacing: Literal["linear", "root", "step"] = "linear"
    """How the hard share grows from ``start`` (epoch 1) to ``max_hard`` (epoch ``full_at``)."""
    start: float = Field(0.0, ge=0, le=1)
    """Hard share at epoch 1 (as a fraction of ``max_hard``)."""
    full_at: int = Field(10, ge=1)
    """Epoch from which the hard share is ``max_hard``."""
    max_hard: float = Field(0.5, ge=0, le=1)
    """Largest share of negatives drawn from the hard distribution (the rest stay uniform)."""
    popularity_alpha: float = Field(1.0, gt=0)
    """``difficulty='popularity'``: hard negatives are drawn with probability ∝ popularity**alpha."""
    teacher_pool: int = Field(200, ge=1)
    """``difficulty='teacher'``: hard negatives are drawn uniformly from the teacher's top-N unseen
    items, less the first ``skip_top`` ranks."""
    skip_top: int | float = Field(0.05, ge=0)
    """Top ranks left out of the hard pool as likely false negatives (held-out positives): the most
    popular items (``popularity``) or each user's highest teacher-ranked unseen items
    (``teacher``). An int is a number of ranks; a float below 1 is a share of the item catalogue
    (rounded down). 0 = draw from the very top."""
    teacher: str = "ease"
    """``difficulty='teacher'`` in a model other than ``distill``: the registered model fitted on
    the same training data whose ranking of each user's unseen items defines the hard pool."""
    teacher_params: dict[str, Any] = Field(default_factory=dict)
    """Hyper-parameters of ``teacher``."""

    @model_validator(mode="after")
    def _pool_left(self) -> CurriculumConfig:
        if isinstance(self.skip_top, float) and self.skip_top >= 1:
            raise ValueError(
                f"skip_top {self.skip_top} as a float is a share of the catalogue and must be "
                "below 1; give an int for a number of ranks"
            )
        if (
            self.difficulty == "teacher"
            and isinstance(self.skip_top, int)
            and self.skip_top >= self.teacher_pool
        ):
            raise ValueError(
                f"skip_top ({self.skip_top}) must be below teacher_pool ({self.teacher_pool})"
            )
        return self


def pacing(epoch: int, kind: str, start: float, full_at: int) -> float:
    """Fraction in [start, 1] of the way to the hardest curriculum at ``epoch`` (1-based).

    ``linear``: start + (1-start)·t, ``root``: start + (1-start)·√t, ``step``: start before
    ``full_at`` then 1, with t = (epoch-1)/(full_at-1) clipped to [0, 1].
    """
    if full_at <= 1:
        return 1.0
    t = min(max((epoch - 1) / (full_at - 1), 0.0), 1.0)
    if kind == "linear":
        return start + (1 - start) * t
    if kind == "root":
        return start + (1 - start) * math.sqrt(t)
    if kind == "step":
        return 1.0 if epoch >= full_at else start
    raise ConfigError(f"unknown pacing {kind!r}; use linear, root or step")


def skipped_ranks(skip_top: int | float, n_items: int) -> int:
    """Number of top ranks ``skip_top`` leaves out: an int as is, a float as ⌊share·n_items⌋."""
    if isinstance(skip_top, float):
        return int(skip_top * n_items)
    return int(skip_top)


class CurriculumNegativeSampler:
    """Negatives for pairwise losses whose hard share grows with the epoch.

    Args:
        positives: user x item training matrix (csr).
        config: the curriculum.
        teacher_top: (n_users, N) item indices a teacher ranks highest among each user's
            unseen items (needed for ``difficulty='teacher'``).
    """

    def __init__(
        self,
        positives: sp.csr_matrix,
        config: CurriculumConfig,
        teacher_top: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.base = NegativeSampler(positives)
        self._cdf: np.ndarray | None = None
        self.teacher_top: np.ndarray | None = None
        self.skip = skip = skipped_ranks(config.skip_top, positives.shape[1])
        """Top ranks left out of the hard pool."""
        if config.difficulty == "popularity":
            pop = np.asarray(positives.sum(0)).ravel().astype(np.float64)
            w = pop**config.popularity_alpha + 1e-12
            if skip:
                if skip >= len(pop):
                    raise ConfigError(
                        f"curriculum skip_top={config.skip_top} skips {skip} of {len(pop)} items: "
                        "no item left for hard negatives"
                    )
                # stable: ties broken by item index, so the skipped set is deterministic
                w[np.argsort(-pop, kind="stable")[:skip]] = 0.0
            self._cdf = np.cumsum(w / w.sum())
        elif teacher_top is None:
            raise ConfigError(
                "curriculum difficulty 'teacher' needs a teacher (teacher_top is None)"
            )
        else:
            top = np.asarray(teacher_top, dtype=np.int64)
            if top.ndim != 2 or min(top.shape[1], config.teacher_pool) <= skip:
                raise ConfigError(
                    f"teacher_top has shape {top.shape} and teacher_pool={config.teacher_pool}: "
                    f"need more than skip_top={config.skip_top} ({skip} ranks) per user"
                )
            self.teacher_top = top[:, skip : config.teacher_pool]
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        """The epoch (1-based) the next ``sample`` call draws for."""
        self.epoch = int(epoch)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each (user, item) pair is a training positive."""
        return self.base.is_positive(users, items)

    @property
    def n_items(self) -> int:
        """Items the sampler draws from."""
        return self.base.n_items

    @property
    def hard_share(self) -> float:
        """Share of negatives drawn from the hard distribution at the current epoch."""
        c = self.config
        return c.max_hard * pacing(self.epoch, c.pacing, c.start, c.full_at)

    def sample(self, users: np.ndarray, n_neg: int, rng: np.random.Generator) -> np.ndarray:
        """(len(users), n_neg) negatives: uniform, a ``hard_share`` of them replaced by hard ones."""
        users = np.asarray(users, dtype=np.int64)
        out = self.base.sample(users, n_neg, rng)
        share = self.hard_share
        if share <= 0:
            return out
        pick = rng.random(out.shape) < share
        if not pick.any():
            return out
        rows = np.repeat(users[:, None], n_neg, 1)[pick]
        if self._cdf is not None:
            out[pick] = self._hard_popular(rows, rng)
        else:
            top = self.teacher_top
            out[pick] = top[rows, rng.integers(0, top.shape[1], size=len(rows))]
        return out

    def _draw_popular(self, rng: np.random.Generator, n: int) -> np.ndarray:
        cdf = self._cdf
        return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)

    def _hard_popular(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One popularity-weighted unseen item per user (rejection; a user left with a positive
        after 20 rounds gets a uniform negative instead)."""
        items = self._draw_popular(rng, len(users))
        bad = self.base.is_positive(users, items)
        for _ in range(20):
            if not bad.any():
                break
            items[bad] = self._draw_popular(rng, int(bad.sum()))
            bad[bad] = self.base.is_positive(users[bad], items[bad])
        if bad.any():
            items[bad] = self.base.sample(users[bad], 1, rng)[:, 0]
        return items


class CurriculumSettings(BaseModel):
    """Config mixin of the models that sample negatives: an optional curriculum."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    curriculum: CurriculumConfig | None = None
    """Negative-sampling curriculum (easy -> hard by popularity or teacher rank, paced over the
    epochs); None = the model's usual uniform negatives."""


def make_negative_sampler(
    positives: sp.csr_matrix,
    curriculum: CurriculumConfig | None,
    teacher_top: np.ndarray | None = None,
) -> NegativeSampler | CurriculumNegativeSampler:
    """The uniform sampler without a curriculum, else a :class:`CurriculumNegativeSampler`
    (``teacher_top`` as for it). Both have ``sample``, ``is_positive`` and ``set_epoch``."""
    if curriculum is None:
        return NegativeSampler(positives)
    return CurriculumNegativeSampler(positives, curriculum, teacher_top)
