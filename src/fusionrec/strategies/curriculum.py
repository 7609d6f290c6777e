"""Curriculum learning and progressive optimisation.

- :func:`pacing` — the share of hard examples at an epoch under a pacing schedule.
- :class:`CurriculumConfig` / :class:`CurriculumNegativeSampler` — a negative-sampling
  curriculum for pairwise (BPR-style) models: early epochs draw negatives uniformly (mostly
  obscure items: easy to tell apart from a positive), later epochs draw a growing share of
  *hard* negatives — popular items the user has not interacted with (``difficulty="popularity"``)
  or the items a teacher model ranks highest among the user's unseen items
  (``difficulty="teacher"``). Same interface as ``NegativeSampler.sample`` plus ``set_epoch``.
- :class:`ProgressiveUnfreezing` — a Trainer callback that freezes named parameter groups of a
  module and unfreezes them at given epochs (defined in ``fusionrec.training.unfreeze`` so the
  Trainer can build it from ``TrainConfig.progressive_unfreeze``; re-exported here).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.samplers import NegativeSampler
from fusionrec.errors import ConfigError
from fusionrec.training.unfreeze import ProgressiveUnfreezing

__all__ = ["CurriculumConfig", "CurriculumNegativeSampler", "pacing", "ProgressiveUnfreezing"]


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
    teacher_pool: int = Field(100, ge=1)
    """``difficulty='teacher'``: hard negatives are drawn uniformly from the teacher's top-N unseen."""


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
        self.hard = None
        if config.difficulty == "popularity":
            self.hard = NegativeSampler(positives, alpha=config.popularity_alpha)
        elif teacher_top is None:
            raise ConfigError(
                "curriculum difficulty 'teacher' needs a teacher (teacher_top is None)"
            )
        self.teacher_top = (
            None
            if teacher_top is None
            else np.asarray(teacher_top, dtype=np.int64)[:, : config.teacher_pool]
        )
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        """The epoch (1-based) the next ``sample`` call draws for."""
        self.epoch = int(epoch)

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
        if self.hard is not None:
            out[pick] = self.hard.sample(rows, 1, rng)[:, 0]
        else:
            top = self.teacher_top
            out[pick] = top[rows, rng.integers(0, top.shape[1], size=len(rows))]
        return out
