"""LightGCN (He et al. 2020): user and item embeddings smoothed over the normalised
user-item graph by parameter-free propagation, layer-mean readout, trained with BPR.

The adjacency is a torch sparse tensor rebuilt from the training interactions (at load time
from the saved seen-matrix, so no extra state is stored).

Scoring cache: scoring (eval mode, gradients off) keeps the propagated embeddings, so a request
costs one lookup and a product instead of a propagation over the whole graph; ``eval()`` and
``score_indices`` keep it. It is dropped by ``train(True)``, ``load_state_dict``, ``.to()``/
``_apply`` and any ``torch.optim`` step in the process (one global step hook: fused Adam does
not bump the parameters' version counters), and it is checked on every read against the
identity and in-place version of every parameter, buffer and the adjacency, so an in-place edit
(``with torch.no_grad(): w.mul_(2)``, ``copy_``) or a replaced tensor refreshes it. Edits that
bypass the version counter (through ``.data``, or of an inference tensor) need
``invalidate_cache()``. Gradient-enabled or training-mode calls never read or fill it. While
torch.export traces (the ONNX export) the cache, when its tensors' versions still match, enters
the graph as a constant (the sparse propagation cannot be exported) and nothing is stored;
under torch.compile the propagation runs uncached. docs/scale.md has the timings.

Speed: a training step propagates over the whole graph (forward and backward: 2·n_layers sparse
products over all edges) whatever the batch, so an epoch costs steps x graph size. At 1M
interactions that was 245 steps of batch 4096, 40-60x a BPR epoch; ``max_steps_per_epoch``
(default 64) grows the batch on large data instead (docs/scale.md has the measurements)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities
from fusionrec.models.negatives import epoch_sampler
from fusionrec.models.registry import register
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.nn.graph import normalized_adjacency, propagate, to_torch_sparse
from fusionrec.nn.losses import bpr_loss
from fusionrec.training.batching import pair_batches
from fusionrec.training.config import TrainConfig
from fusionrec.training.curriculum import CurriculumSettings

__all__ = ["LightGCN", "LightGCNConfig", "LightGCNModule", "epoch_batch_size"]

_optimizer_steps = [0]
"""torch.optim steps taken in this process by any optimizer (the scoring caches' clock)."""
_step_hook: list[Any] = []


def _count_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    _optimizer_steps[0] += 1


def _watch_optimizer_steps() -> None:
    """Register the global step-counting hook once per process (cheap: one increment a step).
    An optimizer step need not bump the parameters' version counters (fused Adam does not), so
    the counter is what tells a cache that an optimizer has moved the weights."""
    if not _step_hook:
        _step_hook.append(register_optimizer_step_post_hook(_count_step))


def _version(t: torch.Tensor) -> int:
    return -1 if t.is_inference() else t._version  # inference tensors keep no version counter


class _CacheKey:
    """What the cached propagation was computed from: the optimizer-step clock, the autocast
    state, and every tensor it read with its in-place version at that time."""

    __slots__ = ("steps", "autocast", "tensors", "versions")

    def __init__(self, tensors: Sequence[torch.Tensor], autocast: tuple) -> None:
        self.steps = _optimizer_steps[0]
        self.autocast = autocast
        self.tensors = tuple(tensors)
        self.versions = tuple(_version(t) for t in self.tensors)

    def unchanged(self, tensors: Sequence[torch.Tensor] | None, autocast: tuple) -> bool:
        """True when no optimizer stepped and no recorded tensor was edited in place; with
        ``tensors``, also that the module holds exactly the recorded tensor objects (skipped
        while exporting, where the module's tensors are the tracer's stand-ins)."""
        if self.steps != _optimizer_steps[0] or self.autocast != autocast:
            return False
        if tensors is not None and (
            len(tensors) != len(self.tensors) or any(a is not b for a, b in zip(tensors, self.tensors, strict=True))
        ):
            return False
        return all(_version(t) == v for t, v in zip(self.tensors, self.versions, strict=True))


class LightGCNConfig(TrainConfig, CurriculumSettings):
    """LightGCN hyper-parameters. Defaults tuned on ml-100k RS 8:1:1 (seed 2020) for a short fit:
    15 epochs of a cosine schedule from lr 0.05 reach NDCG@10 0.311 (30 epochs from 0.02: 0.307)."""

    _aliases: ClassVar[dict[str, str]] = {"embedding_size": "embedding_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    embedding_dim: int = Field(64, ge=1)
    """Width of user and item embeddings (was ``embedding_size``)."""
    n_layers: int = Field(2, ge=0, le=8)
    """Propagation layers (0 = plain matrix factorisation with BPR)."""
    reg_weight: float = Field(1e-3, ge=0)
    """Weight of the L2 penalty on the batch's layer-0 embeddings (sum of squares / 2 / batch)."""
    epochs: int = Field(15, ge=1)
    """Maximum number of passes over the training data."""
    lr: float = Field(5e-2, gt=0)
    """Learning rate (peak of the cosine schedule)."""
    lr_schedule: Literal["constant", "cosine", "step", "linear_warmup_cosine"] = "cosine"
    """Per-epoch learning-rate schedule (see ``fusionrec.training.lr_factor``)."""
    num_negatives: int = Field(4, ge=1)
    """Negative items sampled per positive (BPR against each)."""
    batch_size: int = Field(4096, ge=1)
    """Training interactions per optimisation step (at least; see ``max_steps_per_epoch``)."""
    max_steps_per_epoch: int | None = Field(64, ge=1)
    """Cap on optimisation steps per epoch: when n_interactions / batch_size exceeds it, the
    batch grows to ceil(n_interactions / cap). Every step propagates over the whole graph, so an
    epoch costs steps x graph size; the cap keeps a large dataset's epoch from growing with
    n_interactions² (ml-100k's 20 steps are under it). None = always ``batch_size``."""
    patience: int = Field(10, ge=0)
    """Evaluations without improvement before stopping (0 = never stop early)."""
    fused_optimizer: bool = True
    """torch's fused (single-kernel) optimiser step (the shared setting, on here as for BPR)."""


class LightGCNModule(nn.Module):
    """Embedding table over users then items, propagated over ``adj`` (not a parameter)."""

    def __init__(self, n_users: int, n_items: int, adj: torch.Tensor, c: LightGCNConfig) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.n_layers = c.n_layers
        self.reg_weight = c.reg_weight
        self.embedding = nn.Embedding(n_users + n_items, c.embedding_dim)
        self.adj = adj
        self._cache: torch.Tensor | None = None
        self._cache_key: _CacheKey | None = None
        self.propagations = 0
        """Full-graph propagations run so far (how often the scoring cache missed, plus training)."""
        _watch_optimizer_steps()

    def invalidate_cache(self) -> None:
        """Drop the cached propagation. Needed only after editing weights in a way torch's
        version counters do not see (through ``.data``, a custom non-torch.optim update, an
        inference tensor); other changes are detected (module docstring)."""
        self._cache, self._cache_key = None, None

    def _apply(self, fn, recurse: bool = True):  # keep the sparse adjacency on the module's device
        out = super()._apply(fn, recurse)
        moved = fn(self.adj)
        self.adj = moved.float() if moved.is_floating_point() else self.adj
        self.invalidate_cache()
        return out

    def train(self, mode: bool = True) -> LightGCNModule:
        if mode:  # eval() keeps the cache: score_indices calls it on every request
            self.invalidate_cache()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.invalidate_cache()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _cache_inputs(self) -> list[torch.Tensor]:
        return [*self.parameters(), *self.buffers(), self.adj]

    def _autocast_state(self) -> tuple:
        dev = self.adj.device.type
        on = torch.is_autocast_enabled(dev)
        return (on, torch.get_autocast_dtype(dev) if on else None)

    def item_layer0(self) -> torch.Tensor:
        """Layer-0 vectors of the items (n_items, d): here the item rows of the ID embedding."""
        return self.embedding.weight[self.n_users :]

    def layer0(self) -> torch.Tensor:
        """Layer-0 embeddings of all nodes, users then items: what is propagated and regularised
        (overridable: lm_lightgcn fuses text into the item rows)."""
        return self.embedding.weight

    def propagate_uncached(self) -> torch.Tensor:
        """Layer-mean embeddings of all nodes, computed now (the pure function; no cache)."""
        if not torch.compiler.is_compiling():  # a traced graph counts nothing
            self.propagations += 1
        return propagate(self.adj, self.layer0(), self.n_layers)

    def propagated(self) -> torch.Tensor:
        """Layer-mean embeddings of all nodes; in eval mode with gradients off, the cached ones
        while nothing they were computed from has changed (module docstring)."""
        if self.training or torch.is_grad_enabled():
            return self.propagate_uncached()  # training, or gradients wanted: always fresh
        key, autocast = self._cache_key, self._autocast_state()
        if torch.compiler.is_exporting():
            # the tracer swaps the module's tensors for stand-ins: check the recorded real ones'
            # versions only, and store nothing traced
            if self._cache is not None and key is not None and key.unchanged(None, autocast):
                return self._cache
            return self.propagate_uncached()
        if torch.compiler.is_compiling():
            return self.propagate_uncached()
        inputs = self._cache_inputs()
        if self._cache is not None and key is not None and key.unchanged(inputs, autocast):
            return self._cache
        new_key = _CacheKey(inputs, autocast)
        out = self.propagate_uncached()
        self._cache, self._cache_key = out, new_key
        return out

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        emb = self.propagated()
        u = emb[users]
        p = emb[self.n_users + pos]
        n = emb[self.n_users + neg]
        pos_s = (u * p).sum(-1)
        neg_s = torch.bmm(n, u.unsqueeze(2)).squeeze(2)  # (B, k): no (B, k, d) product tensor
        out = {"bpr": bpr_loss(pos_s, neg_s)}
        if self.reg_weight > 0:
            out["reg"] = self.reg_weight * self._batch_l2(users, pos, neg)
        return out

    def _batch_l2(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """``l2_reg`` of the batch's layer-0 rows (users, positives, negatives, each row as often as
        it occurs), computed as occurrence counts times each row's squared norm: the same value as
        gathering the rows, without the gathers and their scatter-add backward."""
        e0 = self.layer0()
        nodes = torch.cat([users, self.n_users + pos, self.n_users + neg.reshape(-1)])
        counts = torch.bincount(nodes, minlength=e0.shape[0]).to(torch.float32)
        return (counts * e0.float().pow(2).sum(1)).sum() / 2.0 / max(len(users), 1)

    def train_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of ``users`` over all items with gradients (a distillation term's input)."""
        emb = self.propagated()
        return emb[users] @ emb[self.n_users :].T

    @torch.no_grad()
    def score(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        emb = self.propagated()
        u = emb[users]
        it = emb[self.n_users :] if items is None else emb[self.n_users + items]
        return u @ it.T


def epoch_batch_size(n: int, batch_size: int, max_steps: int | None) -> int:
    """``batch_size``, grown to ceil(n / max_steps) when ``n`` examples would take more steps."""
    if max_steps is None:
        return batch_size
    return max(batch_size, -(-n // max_steps))


@register("lightgcn")
class LightGCN(TorchRecommender):
    """LightGCN: layer-mean propagation of embeddings over the normalised user-item graph, BPR."""

    Config = LightGCNConfig
    capabilities = Capabilities(gpu=True)
    config: LightGCNConfig

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        self._adj = normalized_adjacency(dataset.matrix("csr"))

    def build_module(self) -> nn.Module:
        adj = getattr(self, "_adj", None)
        if adj is None:  # after load: rebuild from the saved training interactions
            adj = normalized_adjacency(sp.csr_matrix(self.seen_))
        self._adj = None
        return LightGCNModule(self.n_users, self.n_items, to_torch_sparse(adj), self.config)

    def _init_std(self) -> float:
        return 0.1

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]:
        sampler = epoch_sampler(self, dataset, rng)
        bs = epoch_batch_size(
            dataset.n_interactions, self.config.batch_size, self.config.max_steps_per_epoch
        )
        return pair_batches(dataset, rng, bs, self.config.num_negatives, self.device_, sampler)

    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        return self.module_.score(users, items)

    def item_vectors(self) -> np.ndarray:
        self.module_.eval()
        with torch.no_grad():
            return self.module_.propagated()[self.n_users :].float().cpu().numpy()

    def user_vectors(self) -> np.ndarray:
        """Propagated user embeddings: ``score = user_vectors() @ item_vectors().T``."""
        self.module_.eval()
        with torch.no_grad():
            return self.module_.propagated()[: self.n_users].float().cpu().numpy()
