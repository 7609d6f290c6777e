"""Distillation into any registered torch model (MF, two-tower, SASRec, LightGCN, ...).

The student keeps its own module, batches and loss; for the length of one fit its module's
``loss`` becomes ``(1 - λ)·own loss + λ·distillation`` and each of its batches carries the
distillation candidates of ``kd_users`` users drawn at random (see
:func:`fusionrec.models.composite.distill.kd_candidates`). The distillation term reads the
student's scores through its module's ``train_scores(users)`` when it has one (LightGCN: its
``score`` runs without gradients) or else its own ``score_tensor`` in training mode, so any
model whose scores carry gradients can be a student (others are refused by name); nothing of the teacher stays
on the student after the fit, which saves and loads as the plain student model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import NegativeSampler
from fusionrec.errors import ConfigError
from fusionrec.models.base import Recommender
from fusionrec.models.torch_base import TorchRecommender

__all__ = ["fit_student", "kd_candidates", "kd_loss"]


def kd_loss(s: torch.Tensor, batch: dict[str, Any], kind: str, temperature: float) -> torch.Tensor:
    """The distillation term from the student's scores ``s`` (U, C) of ``batch["kd_items"]``.

    ``softmax_kl`` (logit distillation): KL(softmax(t/T) ‖ softmax(s/T))·T² against the
    teacher's scores ``batch["kd_teacher"]`` (-inf = left out). ``ranking`` (list-wise
    ranking distillation): the first ``kd_k`` candidates (the teacher's top-K, in order) each
    against the sampled rest, -log σ(s_top - s_neg) weighted by ``kd_weight`` (∝ 1/rank)."""
    if kind == "softmax_kl":
        t = batch["kd_teacher"]
        ok = torch.isfinite(t)
        T = temperature
        neg_inf = torch.finfo(s.dtype).min
        log_ps = F.log_softmax(torch.where(ok, s / T, neg_inf), dim=1)
        log_pt = F.log_softmax(torch.where(ok, t / T, neg_inf), dim=1)
        return (
            torch.where(ok, log_pt.exp() * (log_pt - log_ps), torch.zeros_like(s)).sum(1).mean()
            * T
            * T
        )
    k = batch["kd_k"]
    w = batch["kd_weight"]  # (K,)
    sp_, sn = s[:, :k], s[:, k:]
    return (-(F.logsigmoid(sp_ - sn)) * w).sum(1).mean()


def kd_candidates(
    users: np.ndarray,
    t_top: np.ndarray,
    t_scores: np.ndarray,
    k: int,
    c: Any,
    sampler: NegativeSampler,
    rng: np.random.Generator,
    device: torch.device | str,
) -> dict[str, Any]:
    """The distillation part of a batch for ``users``: ``kd_users``, ``kd_items`` (the teacher's
    top-``k`` unseen items, then ``n_sampled`` uniform items for ``softmax_kl`` with
    ``kd_teacher`` scores, or ``k`` sampled unseen items for ``ranking`` with ``kd_k`` and the
    1/rank ``kd_weight``); ``c`` is a ``DistillConfig``."""
    top = t_top[users, :k]
    out: dict[str, Any] = {}
    if c.distill_loss == "softmax_kl":
        extra = rng.integers(0, t_scores.shape[1], size=(len(users), c.n_sampled))
        cand = np.concatenate([top, extra], 1)
        out["kd_teacher"] = torch.from_numpy(t_scores[users[:, None], cand]).to(device)
    else:
        cand = np.concatenate([top, sampler.sample(users, k, rng)], 1)
        w = 1.0 / np.arange(1, k + 1)
        out["kd_weight"] = torch.from_numpy((w / w.sum()).astype(np.float32)).to(device)
        out["kd_k"] = k
    out["kd_users"] = torch.from_numpy(np.asarray(users, np.int64)).to(device)
    out["kd_items"] = torch.from_numpy(cand.astype(np.int64)).to(device)
    return out


def fit_student(
    student: Recommender,
    t_scores: np.ndarray,
    t_top: np.ndarray,
    config: Any,
    dataset: Dataset,
    valid: Dataset | None,
    seed: int,
    options: Any,
) -> TorchRecommender:
    """Fit ``student`` on ``dataset`` with the distillation term of ``config`` (a
    ``DistillConfig``) from the teacher's z-scored scores ``t_scores`` and top unseen items
    ``t_top``; returns the fitted student."""
    if not isinstance(student, TorchRecommender):
        raise ConfigError(
            f"distill student {student.name!r} is not a torch model trained by the shared "
            "Trainer (no loss to add the distillation term to); use e.g. bpr, two_tower, "
            "sasrec or lightgcn"
        )
    c = config
    k = min(c.teacher_topk, t_top.shape[1])
    sampler = NegativeSampler(dataset.matrix("csr"))
    kd_users = np.flatnonzero(np.isfinite(t_scores).any(1))
    if len(kd_users) == 0:
        raise ConfigError("distillation: the teacher ranks no unseen item for any user")
    cls = type(student)

    def build_module() -> torch.nn.Module:
        module = cls.build_module(student)
        own = module.loss

        def loss(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
            plain = {key: v for key, v in batch.items() if not key.startswith("kd_")}
            out = own(plain)
            parts = out if isinstance(out, dict) else {"student": out}
            total = {name: (1 - c.lam) * v for name, v in parts.items()}
            if c.lam > 0 and "kd_users" in batch:
                scorer = getattr(module, "train_scores", None)
                scores = (
                    scorer(batch["kd_users"])
                    if scorer is not None
                    else student.score_tensor(batch["kd_users"], None)
                )
                if not scores.requires_grad:
                    raise ConfigError(
                        f"distill student {student.name!r}: its scores carry no gradient in "
                        "training (give its module a train_scores(users) method)"
                    )
                s = torch.gather(scores, 1, batch["kd_items"])
                total["kd"] = c.lam * kd_loss(s, batch, c.distill_loss, c.temperature)
            return total

        module.loss = loss  # an instance attribute: not in the state dict, gone on reload
        return module

    def batches(ds: Dataset, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        for batch in cls.batches(student, ds, rng):
            if c.lam > 0:
                uu = np.unique(rng.choice(kd_users, size=min(c.kd_users, len(kd_users))))
                batch = dict(batch) | kd_candidates(
                    uu, t_top, t_scores, k, c, sampler, rng, student.device_
                )
            yield batch

    student.build_module = build_module  # type: ignore[method-assign]
    student.batches = batches  # type: ignore[method-assign]
    try:
        student.fit(dataset, valid, seed=seed, options=options)
    finally:
        del student.build_module, student.batches
        module = getattr(student, "module_", None)
        if module is not None and "loss" in vars(module):
            del module.loss
    return student
