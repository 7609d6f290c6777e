"""Knowledge distillation: a student model learns from a fitted teacher's scores.

The student is by default a matrix-factorisation model (user/item embeddings of size
``embedding_dim``, dot-product score) trained by the shared Trainer with

    loss = (1 - λ) · BPR(ground truth) + λ · distillation loss

or, with ``student`` (a registered model name and params), any torch model trained by the
shared Trainer — ``bpr``, ``two_tower``, ``sasrec``, ``lightgcn``, ...: its own loss takes the
place of BPR (``models/composite/kd_student.py``); the distilled folder holds the student as a
nested model folder and scores with it.

- ``distill_loss="softmax_kl"``: per user, a candidate set = the teacher's top-``teacher_topk``
  unseen items plus ``n_sampled`` uniformly drawn items; KL(softmax(t/T) ‖ softmax(s/T)) · T²
  between the teacher's per-user z-scored scores t and the student's scores s (items the user
  saw in training are left out of the softmax: the ground-truth term handles them).
- ``distill_loss="ranking"``: ranking distillation — the teacher's top-K unseen items act as
  extra positives against sampled items, position-weighted (weight ∝ 1/rank).

The teacher is any fitted Recommender: passed in Python (:func:`distill`), loaded from a saved
model folder (``teacher_path``) or fitted from a spec (``teacher``) on the same training data.
Only the student is saved: a distilled model loads and serves without its teacher.
An optional negative-sampling curriculum (``curriculum``) makes negatives harder over epochs.
With ``lam=0`` and no curriculum the model is plain BPR-MF (the "student alone" baseline).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import NegativeSampler
from fusionrec.errors import ConfigError, ModelStateError
from fusionrec.models.base import Capabilities, Recommender, load_model
from fusionrec.models.composite.ensemble import MemberSpec, normalise_scores
from fusionrec.models.composite.kd_student import kd_candidates, kd_loss
from fusionrec.models.folder import member_folder, nested_load
from fusionrec.models.registry import get_model, register
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.ranking import mask_seen, topk
from fusionrec.training.config import TrainConfig
from fusionrec.training.curriculum import CurriculumConfig, CurriculumNegativeSampler

__all__ = [
    "Distilled",
    "DistillConfig",
    "distill",
    "kd_candidates",
    "kd_loss",
    "parameter_count",
    "teacher_score_matrix",
]

# dense teacher scores are kept during training only; refuse beyond this many cells
_MAX_CELLS = 200_000_000


class DistillConfig(TrainConfig):
    """Student (MF) settings, distillation settings and the shared Trainer's fields."""

    _aliases: ClassVar[dict[str, str]] = {"embedding_size": "embedding_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    teacher: MemberSpec | None = None
    """Teacher fitted on the same training data (ignored when a teacher is given in Python)."""
    teacher_path: str | None = None
    """Folder of a saved, fitted teacher model (alternative to ``teacher``)."""
    student: MemberSpec | None = None
    """Any registered torch model as the student (its own loss weighted 1-λ); None = the
    built-in MF student of size ``embedding_dim``."""
    kd_users: int = Field(256, ge=1)
    """``student``: users drawn per batch for the distillation term."""
    embedding_dim: int = Field(8, ge=1)
    """Dimension of the built-in MF student's user and item embeddings (was ``embedding_size``)."""
    lam: float = Field(0.5, ge=0, le=1)
    """λ: weight of the distillation loss; (1-λ) weights the ground-truth BPR loss."""
    temperature: float = Field(1.0, gt=0)
    """Softmax temperature T of the soft-label KL (the loss is scaled by T²)."""
    distill_loss: Literal["softmax_kl", "ranking"] = "softmax_kl"
    """Soft-label KL over candidate items, or ranking distillation on the teacher's top-K."""
    teacher_topk: int = Field(50, ge=1)
    """Candidates per user from the teacher's top unseen items."""
    n_sampled: int = Field(50, ge=0)
    """Uniformly sampled extra candidates per user for the soft-label KL."""
    curriculum: CurriculumConfig | None = None
    """Optional negative-sampling curriculum for the ground-truth BPR term."""
    epochs: int = Field(60, ge=1)
    """Maximum number of passes over the training interactions."""
    batch_size: int = Field(4096, ge=1)
    """Positive interactions per optimisation step."""
    lr: float = Field(5e-3, gt=0)
    """Learning rate."""
    patience: int = Field(5, ge=0)
    """Evaluations without improvement before stopping (0 = never stop early)."""

    @model_validator(mode="after")
    def _one_teacher(self) -> DistillConfig:
        if self.teacher is not None and self.teacher_path is not None:
            raise ValueError("give either teacher or teacher_path, not both")
        if self.student is not None and self.curriculum is not None:
            raise ValueError("with a student, give the curriculum in the student's params")
        return self


def teacher_score_matrix(teacher: Recommender, seen, batch_size: int = 512) -> np.ndarray:
    """Per-user z-scored teacher scores (n_users, n_items) float32; seen items are -inf."""
    n_users, n_items = seen.shape
    if n_users * n_items > _MAX_CELLS:
        raise ConfigError(
            f"distillation keeps dense teacher scores: {n_users} x {n_items} is too large"
        )
    out = np.empty((n_users, n_items), np.float32)
    for s in range(0, n_users, batch_size):
        rows = np.arange(s, min(s + batch_size, n_users))
        sc = np.array(teacher.score_indices(rows), dtype=np.float64)
        sc[~np.isfinite(sc)] = -np.inf
        mask_seen(sc, rows, seen)
        out[s : s + len(rows)] = normalise_scores(sc, "zscore")
    return out


def parameter_count(model: Recommender) -> int:
    """Number of learned numbers a fitted model scores with (torch parameters, or state arrays)."""
    module = getattr(model, "module_", None)
    if isinstance(module, torch.nn.Module):
        return int(sum(p.numel() for p in module.parameters()))
    members = getattr(model, "members_", None)
    if members:
        return int(sum(parameter_count(m) for m in members))
    return int(
        sum(
            np.asarray(v).size
            for v in model._get_state().values()
            if np.issubdtype(np.asarray(v).dtype, np.floating)
        )
    )


class DistillModule(torch.nn.Module):
    """MF student; the loss mixes ground-truth BPR with a distillation term."""

    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.user = torch.nn.Embedding(n_users, dim)
        self.item = torch.nn.Embedding(n_items, dim)
        self.lam = 0.0
        self.temperature = 1.0
        self.kind = "softmax_kl"

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | torch.Tensor:
        u = self.user(batch["user"])
        pos = (u * self.item(batch["pos"])).sum(-1, keepdim=True)
        neg = torch.einsum("bd,bnd->bn", u, self.item(batch["neg"]))
        gt = -F.logsigmoid(pos - neg).mean()
        if self.lam <= 0 or "kd_users" not in batch:
            return gt
        cu = self.user(batch["kd_users"])  # (U, d)
        cand = batch["kd_items"]  # (U, C)
        s = torch.einsum("ud,ucd->uc", cu, self.item(cand))
        kl = kd_loss(s, batch, self.kind, self.temperature)
        return {"gt": (1 - self.lam) * gt, "kd": self.lam * kl}


@register("distill")
class Distilled(TorchRecommender):
    """A small MF student distilled from a teacher model's scores (soft-label KL or ranking)."""

    Config = DistillConfig
    capabilities = Capabilities(gpu=True)
    needs_configuration = "needs a teacher (teacher or teacher_path in its params)"

    def __init__(self, config: DistillConfig | dict | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self._teacher: Recommender | None = None

    def with_teacher(self, teacher: Recommender) -> Distilled:
        """Use an already-fitted ``teacher`` (same user/item ids as the training data)."""
        self._teacher = teacher
        return self

    def _resolve_teacher(
        self, dataset: Dataset, valid: Dataset | None, seed: int
    ) -> Recommender | None:
        c = self.config
        if self._teacher is not None:
            t = self._teacher
        elif c.teacher_path is not None:
            t = load_model(c.teacher_path, self.fit_options_.device, cpu_threads=self.fit_options_.cpu_threads)
        elif c.teacher is not None:
            t = get_model(c.teacher.name)(**c.teacher.params).fit(dataset, valid, seed=seed, options=self.fit_options_.nested())
        else:
            return None
        if (
            t.n_users != dataset.n_users
            or t.n_items != dataset.n_items
            or not np.array_equal(t.items_.ids, dataset.items.ids)
            or not np.array_equal(t.users_.ids, dataset.users.ids)
        ):
            raise ConfigError(
                f"teacher {t.name!r} was fitted on different users/items than the training data"
            )
        return t

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        c = self.config
        m = dataset.matrix("csr")
        self._users = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        self._items = m.indices.astype(np.int64)
        self._epoch = 0
        needs_teacher = c.lam > 0 or (
            c.curriculum is not None and c.curriculum.difficulty == "teacher"
        )
        teacher = (
            self._resolve_teacher(dataset, getattr(self, "_valid", None), getattr(self, "_seed", 0))
            if needs_teacher
            else None
        )
        if needs_teacher and teacher is None:
            raise ConfigError(
                "distillation needs a teacher: set teacher or teacher_path, or call with_teacher(model)"
            )
        self._t_scores = self._t_top = None
        if teacher is not None:
            self._t_scores = teacher_score_matrix(teacher, m)
            kmax = max(c.teacher_topk, c.curriculum.teacher_pool if c.curriculum else 0)
            self._t_top = topk(self._t_scores, min(kmax, dataset.n_items))[0]
        if c.curriculum is not None:
            self._sampler: NegativeSampler | CurriculumNegativeSampler = CurriculumNegativeSampler(
                m, c.curriculum, self._t_top
            )
        else:
            self._sampler = NegativeSampler(m)
        self._kd_sampler = NegativeSampler(m)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        if self.config.student is not None:
            self._fit_student(dataset, valid, seed)
            return
        self.student_ = None
        self._valid, self._seed = valid, seed
        try:
            super()._fit(dataset, valid, seed)
        finally:
            # the teacher is not needed to score: drop it and its dense scores
            self._t_scores = self._t_top = None
            self._teacher = None
            self._sampler = self._kd_sampler = None
            del self._valid, self._seed

    def _fit_student(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        from fusionrec.models.composite.kd_student import fit_student

        c = self.config
        teacher = self._resolve_teacher(dataset, valid, seed)
        if teacher is None and c.lam > 0:
            raise ConfigError(
                "distillation needs a teacher: set teacher or teacher_path, or call with_teacher(model)"
            )
        m = dataset.matrix("csr")
        if teacher is not None:
            t_scores = teacher_score_matrix(teacher, m)
            t_top = topk(t_scores, min(c.teacher_topk, dataset.n_items))[0]
        else:
            t_scores = np.zeros((dataset.n_users, dataset.n_items), np.float32)
            t_top = np.zeros((dataset.n_users, 1), np.int64)
        self._teacher = None
        spec = c.student
        student = get_model(spec.name)(**spec.params)
        self.student_ = fit_student(
            student, t_scores, t_top, c, dataset, valid, seed, self.fit_options_.nested()
        )
        self.members_ = [self.student_]
        self.history_ = getattr(self.student_, "history_", None)
        self.device_ = getattr(self.student_, "device_", None)
        self.fitted_ = True

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        st = getattr(self, "student_", None)
        if st is not None:
            return st.score_indices(user_idx, item_idx)
        return super().score_indices(user_idx, item_idx)

    def _get_state(self) -> dict[str, np.ndarray]:
        if getattr(self, "student_", None) is not None:
            return {}
        return super()._get_state()

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        if self.config.student is None:
            super()._set_state(state)

    def _save_files(self, folder) -> None:
        if getattr(self, "student_", None) is not None:
            self.student_.save(folder / "student")

    def _load_files(self, folder) -> None:
        self.student_ = None
        spec = self.config.student
        if spec is None:
            return
        with nested_load(folder):
            path = member_folder(folder, "student")
            st = load_model(path, self.fit_options_.device, cpu_threads=self.fit_options_.cpu_threads)
        if type(st) is not get_model(spec.name):
            raise ModelStateError(f"{path} holds a {st.name!r} model, the config names {spec.name!r}")
        self.student_ = st
        self.members_ = [st]

    def build_module(self) -> torch.nn.Module:
        c = self.config
        mod = DistillModule(self.n_users, self.n_items, c.embedding_dim)
        mod.lam, mod.temperature, mod.kind = c.lam, c.temperature, c.distill_loss
        return mod

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        c = self.config
        self._epoch += 1
        if isinstance(self._sampler, CurriculumNegativeSampler):
            self._sampler.set_epoch(self._epoch)
        order = rng.permutation(len(self._users))
        users, items = self._users[order], self._items[order]
        negs = self._sampler.sample(users, c.num_negatives, rng)
        dev = self.device_
        u_t, i_t, n_t = (torch.from_numpy(a).to(dev) for a in (users, items, negs))
        bs = c.batch_size
        kd = c.lam > 0 and self._t_scores is not None
        k = min(c.teacher_topk, self._t_top.shape[1]) if kd else 0
        for s in range(0, len(users), bs):
            batch = {"user": u_t[s : s + bs], "pos": i_t[s : s + bs], "neg": n_t[s : s + bs]}
            if kd:
                uu = np.unique(users[s : s + bs])
                batch |= kd_candidates(
                    uu, self._t_top, self._t_scores, k, c, self._kd_sampler, rng, dev
                )
                batch["n_samples"] = min(bs, len(users) - s)
            yield batch

    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        u = self.module_.user.weight[users]
        it = self.module_.item.weight if items is None else self.module_.item.weight[items]
        return u @ it.T

    def item_vectors(self) -> np.ndarray | None:
        """The student's item embeddings (n_items, embedding_dim)."""
        self._require_fitted()
        if getattr(self, "student_", None) is not None:
            return self.student_.item_vectors()
        return self.module_.item.weight.detach().float().cpu().numpy()


def distill(
    teacher: Recommender,
    train: Dataset,
    valid: Dataset | None = None,
    seed: int = 0,
    **params: Any,
) -> Distilled:
    """Fit a small MF student on ``train`` taught by the fitted ``teacher``; returns the student.

    ``params`` are :class:`DistillConfig` fields (``embedding_dim``, ``lam``, ``temperature``,
    ``distill_loss``, ``epochs``, ...).
    """
    if not getattr(teacher, "fitted_", False):
        raise ConfigError(f"the teacher {teacher.name!r} must be fitted before distillation")
    return Distilled(**params).with_teacher(teacher).fit(train, valid, seed=seed)
