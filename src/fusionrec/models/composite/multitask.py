"""Multi-task learning: one model trained for several targets over shared user/item embeddings.

Every training interaction (u, i) gives the input x = [e_u, e_i, e_u ⊙ e_i]. A *shared bottom*
(one MLP), an *MMoE* (``n_experts`` expert MLPs mixed by one softmax gate per task) or a *PLE*
(Tang et al. 2020, one CGC extraction layer: ``n_experts`` shared experts plus
``n_task_experts`` experts of each task's own, each task's gate mixing the shared experts and
its own) turns x into a representation per task, and one tower per task predicts its target.
Task heads are configured by name:

- ``ranking``: implicit-feedback score, pairwise BPR loss against sampled negatives (this is
  the score ``recommend`` ranks by; without it ``click``, then the predicted rating is used);
- ``click``: pointwise click probability, BCE of positives (label 1) and sampled negatives (0);
- ``rating``: explicit rating regression (MSE, around the training mean);
- ``like``: an interaction label — BCE on ``rating >= like_threshold`` of each interaction;
- ``genre``: multi-label prediction of the item's tags (BCE) from the ``genre_field`` item
  feature (ml-100k: ``class``);
- ``item:<field>``: the same for any ``token``/``token_seq`` item feature ``<field>``.

Task weights are fixed (``task_weights``) or learned by uncertainty weighting (Kendall et al.
2018: L = Σ_t exp(-s_t)·L_t + s_t with learned log-variances s_t). Per-task metrics:
:func:`rating_rmse` for ratings, the full-ranking Evaluator for the ranking.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities
from fusionrec.models.negatives import advance_epoch, negative_sampler
from fusionrec.models.registry import register
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.training.config import TrainConfig
from fusionrec.training.curriculum import CurriculumSettings

__all__ = ["MultiTask", "MultiTaskConfig", "rating_rmse", "TASKS"]

TASKS: tuple[str, ...] = ("ranking", "click", "rating", "like", "genre")
"""Task heads by name; ``item:<field>`` adds one per item feature."""


def _item_field(task: str, genre_field: str) -> str | None:
    """The item feature an item-label task predicts (None for other tasks)."""
    if task == "genre":
        return genre_field
    return task[5:] if task.startswith("item:") else None


class MultiTaskConfig(TrainConfig, CurriculumSettings):
    """Multi-task model settings (plus the shared Trainer's fields)."""

    _aliases: ClassVar[dict[str, str]] = {"embedding_size": "embedding_dim", "hidden": "hidden_dims", "tower_hidden": "tower_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    tasks: tuple[str, ...] = ("ranking", "rating")
    """Task heads trained together (each once): ranking, click, rating, like, genre or
    item:<item feature>."""
    architecture: Literal["shared_bottom", "mmoe", "ple"] = "mmoe"
    """Shared-bottom MLP, a multi-gate mixture of experts, or progressive layered extraction
    (shared plus task-specific experts)."""
    n_task_experts: int = Field(1, ge=1)
    """PLE: experts of each task's own (besides the ``n_experts`` shared ones)."""
    like_threshold: float = 4.0
    """``like``: an interaction with rating >= this is labelled 1."""
    embedding_dim: int = Field(32, ge=1)
    """Dimension of the user and item embeddings (was ``embedding_size``)."""
    hidden_dims: tuple[int, ...] = (64,)
    """Hidden sizes of the shared bottom / of each expert (its last size is the output size;
    was ``hidden``)."""
    n_experts: int = Field(4, ge=1)
    """MMoE: number of experts."""
    tower_dim: int = Field(32, ge=1)
    """Hidden size of each task tower (was ``tower_hidden``)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout in the bottom/experts."""
    weighting: Literal["fixed", "uncertainty"] = "fixed"
    """Fixed task weights, or learned uncertainty weights."""
    task_weights: tuple[float, ...] | None = None
    """Fixed weights in the order of ``tasks`` (None = 1 each); with 'uncertainty', initial scales."""
    genre_field: str = "class"
    """Item feature (token or token_seq) predicted by the 'genre' task."""
    epochs: int = Field(30, ge=1)
    """Maximum number of passes over the training interactions."""
    batch_size: int = Field(2048, ge=1)
    """Interactions per optimisation step."""
    lr: float = Field(3e-3, gt=0)
    """Learning rate."""
    patience: int = Field(3, ge=0)
    """Evaluations without improvement before stopping (0 = never stop early)."""
    weight_decay: float = Field(1e-4, ge=0)
    """AdamW weight decay; without it the rating head overfits (ml-100k validation RMSE 1.066
    at 0 vs 0.964 at 1e-4)."""

    @model_validator(mode="after")
    def _check(self) -> MultiTaskConfig:
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError("tasks must be a non-empty list of distinct task names")
        bad = [t for t in self.tasks if t not in TASKS and not (t.startswith("item:") and t[5:])]
        if bad:
            raise ValueError(f"unknown tasks {bad}; use {', '.join(TASKS)} or item:<field>")
        if self.task_weights is not None and len(self.task_weights) != len(self.tasks):
            raise ValueError(f"{len(self.task_weights)} task_weights for {len(self.tasks)} tasks")
        return self


def _mlp(sizes: list[int], dropout: float) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        if dropout > 0:
            layers.append(torch.nn.Dropout(dropout))
    return torch.nn.Sequential(*layers)


class MultiTaskModule(torch.nn.Module):
    """Embeddings, shared bottom or MMoE experts+gates, one tower per task."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: MultiTaskConfig,
        n_labels: dict[str, int],
        rating_mean: float,
    ) -> None:
        super().__init__()
        c = config
        d = c.embedding_dim
        self.tasks = list(c.tasks)
        self.user = torch.nn.Embedding(n_users, d)
        self.item = torch.nn.Embedding(n_items, d)
        sizes = [3 * d, *c.hidden_dims]
        self.architecture = c.architecture
        self.mmoe = c.architecture in ("mmoe", "ple")
        if self.mmoe:
            self.experts = torch.nn.ModuleList(_mlp(sizes, c.dropout) for _ in range(c.n_experts))
            own = c.n_task_experts if c.architecture == "ple" else 0
            self.task_experts = torch.nn.ModuleDict(
                {
                    _key(t): torch.nn.ModuleList(_mlp(sizes, c.dropout) for _ in range(own))
                    for t in self.tasks
                }
            )
            self.gates = torch.nn.ModuleDict(
                {_key(t): torch.nn.Linear(3 * d, c.n_experts + own) for t in self.tasks}
            )
        else:
            self.bottom = _mlp(sizes, c.dropout)
        out = {t: max(n_labels.get(t, 1), 1) for t in self.tasks}
        self.towers = torch.nn.ModuleDict(
            {
                _key(t): torch.nn.Sequential(
                    torch.nn.Linear(sizes[-1], c.tower_dim),
                    torch.nn.ReLU(),
                    torch.nn.Linear(c.tower_dim, out[t]),
                )
                for t in self.tasks
            }
        )
        self.log_vars = (
            torch.nn.Parameter(torch.zeros(len(self.tasks)))
            if c.weighting == "uncertainty"
            else None
        )
        w = c.task_weights or (1.0,) * len(self.tasks)
        self.register_buffer("weights", torch.tensor(w, dtype=torch.float32))
        self.register_buffer("rating_mean", torch.tensor(float(rating_mean)))

    def _input(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        eu, ei = self.user(users), self.item(items)
        return torch.cat([eu, ei, eu * ei], -1)

    def gate_weights(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """MMoE/PLE: each task's softmax gate over its experts, (B, n_experts [+ n_task_experts])
        with the shared experts first."""
        if not self.mmoe:
            raise ConfigError("a shared-bottom multitask model has no gates")
        x = self._input(users, items)
        return {t: torch.softmax(self.gates[_key(t)](x), -1) for t in self.tasks}

    def heads(
        self, users: torch.Tensor, items: torch.Tensor, tasks: list[str]
    ) -> dict[str, torch.Tensor]:
        """Tower outputs for pairs (users[k], items[k]), for the given tasks."""
        x = self._input(users, items)
        if self.mmoe:
            shared = [e(x) for e in self.experts]
            reps = {}
            for t in tasks:
                ex = torch.stack(shared + [e(x) for e in self.task_experts[_key(t)]], -2)
                g = torch.softmax(self.gates[_key(t)](x), -1).unsqueeze(-1)
                reps[t] = (g * ex).sum(-2)
        else:
            h = self.bottom(x)
            reps = {t: h for t in tasks}
        return {t: self.towers[_key(t)](reps[t]) for t in tasks}

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        users, pos = batch["user"], batch["pos"]
        out = self.heads(users, pos, self.tasks)
        losses: dict[str, torch.Tensor] = {}
        sampled = [t for t in ("ranking", "click") if t in self.tasks]
        neg = self.heads(users, batch["neg"], sampled) if sampled else {}
        if "ranking" in self.tasks:
            losses["ranking"] = -F.logsigmoid(out["ranking"] - neg["ranking"]).mean()
        if "click" in self.tasks:
            logits = torch.cat([out["click"], neg["click"]]).squeeze(-1)
            labels = torch.cat([torch.ones(len(users)), torch.zeros(len(users))]).to(logits)
            losses["click"] = F.binary_cross_entropy_with_logits(logits, labels)
        if "rating" in self.tasks:
            pred = out["rating"].squeeze(-1) + self.rating_mean
            losses["rating"] = F.mse_loss(pred, batch["rating"])
        if "like" in self.tasks:
            losses["like"] = F.binary_cross_entropy_with_logits(
                out["like"].squeeze(-1), batch["like"]
            )
        for t in self.tasks:
            if t == "genre" or t.startswith("item:"):
                losses[t] = F.binary_cross_entropy_with_logits(out[t], batch[_key(t)])
        result = {}
        for k, t in enumerate(self.tasks):
            if self.log_vars is not None:
                s = self.log_vars[k]
                result[_key(t)] = self.weights[k] * torch.exp(-s) * losses[t] + s
            else:
                result[_key(t)] = self.weights[k] * losses[t]
        return result


def _key(task: str) -> str:
    """A module/batch key for a task name (``item:x`` -> ``item_x``: no dots or colons)."""
    return task.replace(":", "_").replace(".", "_")


def _multi_hot(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    values = [
        list(v)
        if isinstance(v, (list, tuple, np.ndarray))
        else ([] if v is None or (isinstance(v, float) and np.isnan(v)) else [v])
        for v in col
    ]
    vocab = sorted({str(x) for v in values for x in v})
    pos = {g: j for j, g in enumerate(vocab)}
    out = np.zeros((len(values), len(vocab)), np.float32)
    for i, v in enumerate(values):
        for x in v:
            out[i, pos[str(x)]] = 1.0
    return out, vocab


@register("multitask")
class MultiTask(TorchRecommender):
    """Multi-task model (shared-bottom or MMoE) for ranking, rating regression and genre tags."""

    Config = MultiTaskConfig
    capabilities = Capabilities(gpu=True, rating_prediction=True)

    def check_dataset(self, dataset: Dataset) -> None:
        super().check_dataset(dataset)
        c = self.config
        for t in ("rating", "like"):
            if t in c.tasks and dataset.rating is None:
                raise ConfigError(
                    f"multitask task {t!r} needs ratings; dataset {dataset.name!r} has none"
                )
        for t in c.tasks:
            field = _item_field(t, c.genre_field)
            if field is not None and (
                dataset.item_features is None or field not in dataset.item_features.columns
            ):
                raise ConfigError(
                    f"multitask task {t!r} needs item feature {field!r}; dataset {dataset.name!r} has none"
                )

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        c = self.config
        self._users = dataset.user_idx.astype(np.int64)
        self._items = dataset.item_idx.astype(np.int64)
        self._ratings = None if dataset.rating is None else dataset.rating.astype(np.float32)
        self._rating_mean = (
            float(self._ratings.mean())
            if self._ratings is not None and "rating" in c.tasks
            else 0.0
        )
        self._sampler = negative_sampler(self, dataset, rng)
        self._labels: dict[str, np.ndarray] = {}
        for t in c.tasks:
            field = _item_field(t, c.genre_field)
            if field is not None:
                self._labels[t], _ = _multi_hot(dataset.item_features[field])

    def _n_labels(self) -> dict[str, int]:
        return {t: m.shape[1] for t, m in self._labels.items()}

    def _extra_state(self) -> dict[str, np.ndarray]:
        n = self._n_labels()
        return {"n_labels": np.asarray([n.get(t, 1) for t in self.config.tasks], np.int64)}

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        tasks = self.config.tasks
        if "n_labels" in state:
            counts = [int(x) for x in state["n_labels"]]
        else:  # folders saved before configurable heads: only the genre head had labels
            g = int(state["n_genres"][0])
            counts = [g if t == "genre" else 1 for t in tasks]
        self._labels = {
            t: np.zeros((0, k), np.float32)
            for t, k in zip(tasks, counts, strict=True)
            if _item_field(t, self.config.genre_field) is not None
        }
        self._rating_mean = 0.0  # restored with the module's buffers

    def build_module(self) -> torch.nn.Module:
        return MultiTaskModule(
            self.n_users, self.n_items, self.config, self._n_labels(), self._rating_mean
        )

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        c = self.config
        order = rng.permutation(len(self._users))
        users, items = self._users[order], self._items[order]
        dev = self.device_
        arrays = {"user": users, "pos": items}
        if "ranking" in c.tasks or "click" in c.tasks:
            advance_epoch(self, self._sampler)
            arrays["neg"] = self._sampler.sample(users, 1, rng)[:, 0]
        if "rating" in c.tasks:
            arrays["rating"] = self._ratings[order]
        if "like" in c.tasks:
            arrays["like"] = (self._ratings[order] >= c.like_threshold).astype(np.float32)
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in arrays.items()}
        labels = {t: torch.from_numpy(m).to(dev) for t, m in self._labels.items()}
        for s in range(0, len(users), c.batch_size):
            b = {k: v[s : s + c.batch_size] for k, v in tensors.items()}
            for t, m in labels.items():
                b[_key(t)] = m[b["pos"]]
            yield b

    def _pair_scores(self, users: torch.Tensor, items: torch.Tensor, task: str) -> torch.Tensor:
        out = self.module_.heads(users, items, [task])[task].squeeze(-1)
        return out + self.module_.rating_mean if task == "rating" else out

    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        task = next(
            (t for t in ("ranking", "click", "rating", "like") if t in self.config.tasks), None
        )
        if task is None:
            raise ConfigError(
                f"a multitask model with only item-label tasks {list(self.config.tasks)} cannot "
                "rank items: add ranking, click, rating or like"
            )
        its = torch.arange(self.n_items, device=users.device) if items is None else items
        out = torch.empty((len(users), len(its)), device=users.device)
        step = max(1, 131072 // max(len(its), 1))
        for s in range(0, len(users), step):
            u = users[s : s + step]
            uu = u[:, None].expand(-1, len(its))
            ii = its[None, :].expand(len(u), -1)
            out[s : s + step] = self._pair_scores(uu.reshape(-1), ii.reshape(-1), task).view(
                len(u), len(its)
            )
        return out

    @torch.no_grad()
    def predict_rating_indices(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings for pairs (user_idx[k], item_idx[k])."""
        self._require_fitted()
        if "rating" not in self.config.tasks:
            raise ConfigError("this multitask model was not trained for the 'rating' task")
        self.module_.eval()
        u = torch.as_tensor(np.array(user_idx, dtype=np.int64), device=self.device_)
        i = torch.as_tensor(np.array(item_idx, dtype=np.int64), device=self.device_)
        return self._pair_scores(u, i, "rating").float().cpu().numpy()

    def predict_rating(self, users, items) -> np.ndarray:
        """Predicted ratings for pairs of external ids (same length)."""
        u = self.users_.to_idx(np.asarray(users, dtype=object))
        i = self.items_.to_idx(np.asarray(items, dtype=object))
        return self.predict_rating_indices(u, i)


def rating_rmse(model: MultiTask, test: Dataset) -> float:
    """Root mean squared error of ``model.predict_rating_indices`` on ``test``'s ratings."""
    if test.rating is None:
        raise ConfigError(f"dataset {test.name!r} has no ratings to compute an RMSE on")
    pred = model.predict_rating_indices(test.user_idx, test.item_idx)
    return float(np.sqrt(np.mean((pred - test.rating.astype(np.float64)) ** 2)))
