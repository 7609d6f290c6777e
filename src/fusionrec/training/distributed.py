"""Data-parallel training on ``torch.distributed`` (DDP), used by the one Trainer.

How a run is laid out (``fusionrec train --nproc N`` starts it through ``torch.distributed.run``):

- every rank builds the same model from the same seed and draws the same epoch of batches from
  ``model.batches(train, rng)`` (same permutation, same negatives);
- each global batch of B samples is cut into ``world_size`` contiguous slices (``shard_batch``);
  rank r trains on slice r through a ``DistributedDataParallel`` wrapper, which averages the
  gradients across ranks. Each rank's loss is weighted by ``world_size * n_r / B``, so the
  averaged gradient is the gradient of the global batch's mean loss: the same step a single
  process takes with batch size B (per-sample mean losses and whole-table regularisers are
  exact; terms that couple the samples of a batch, such as in-batch negatives, see only the
  rank's slice);
- rank 0 alone validates, writes checkpoints/logs and runs callbacks; the validation metric is
  broadcast so every rank takes the same best-epoch and early-stopping decisions.

gloo serves CPU ranks, NCCL CUDA ranks (``backend_for``). The library never reads the
environment: the CLI initialises the process group (``init_process_group``) from what
``torch.distributed.run`` exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "DistContext",
    "context",
    "backend_for",
    "init_process_group",
    "shard_batch",
    "ddp_wrap",
    "broadcast_float",
    "all_reduce_mean",
    "torchrun_args",
]


@dataclass(frozen=True)
class DistContext:
    """This process's place in an initialised process group."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> DistContext | None:
    """The process group this process belongs to, or None when it trains alone (no group, or a
    group of one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size()
    return None if world < 2 else DistContext(dist.get_rank(), world)


def backend_for(device: torch.device | str) -> str:
    """'nccl' for CUDA devices, 'gloo' otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_process_group(backend: str, rank: int, world_size: int, init_method: str = "env://") -> DistContext:
    """Join the process group (idempotent); ``init_method`` 'env://' takes the rendezvous address
    that ``torch.distributed.run`` exported."""
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    return DistContext(dist.get_rank(), dist.get_world_size())


def _leading(batch: dict[str, Any]) -> int:
    if "n_samples" in batch:
        return int(batch["n_samples"])
    for v in batch.values():
        if (torch.is_tensor(v) or isinstance(v, np.ndarray)) and v.ndim > 0:
            return int(v.shape[0])
    raise ValueError("cannot shard a batch without a tensor with a leading sample dimension")


def shard_batch(batch: dict[str, Any], rank: int, world_size: int) -> tuple[dict[str, Any], float]:
    """Rank ``rank``'s contiguous slice of a batch of B samples, and its loss weight
    ``world_size * n_rank / B``.

    Tensors and arrays whose leading dimension is B are sliced (slices as ``np.array_split``
    cuts them: sizes differ by at most one); everything else is handed to every rank. A rank
    left without a sample (B < world_size) gets the first sample with weight 0, so it still
    joins the gradient all-reduce without moving the weights."""
    n = _leading(batch)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    base, extra = divmod(n, world_size)  # np.array_split's cut: the first `extra` slices get one more
    lo, size = rank * base + min(rank, extra), base + (rank < extra)
    weight = world_size * size / n if n else 0.0
    if size == 0:
        lo, size, weight = 0, min(1, n), 0.0
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if (torch.is_tensor(v) or isinstance(v, np.ndarray)) and v.ndim > 0 and v.shape[0] == n:
            out[k] = v[lo : lo + size]
        else:
            out[k] = v
    if "n_samples" in batch:
        out["n_samples"] = size
    return out, weight


class _LossForward(torch.nn.Module):
    """Makes ``module.loss(batch)`` the ``forward`` that DDP wraps (DDP syncs through forward)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.inner = module

    def forward(self, batch: dict[str, Any]) -> Any:
        return self.inner.loss(batch)


def ddp_wrap(module: torch.nn.Module) -> torch.nn.parallel.DistributedDataParallel:
    """A DDP wrapper whose forward is ``module.loss``; rank 0's weights are broadcast at wrap
    time. ``find_unused_parameters`` is on: a model's loss may leave some parameters out of a
    step (a text tower on a batch without text, a frozen stage being unfrozen)."""
    dev = next((p.device for p in module.parameters()), torch.device("cpu"))
    ids = [dev.index] if dev.type == "cuda" and dev.index is not None else None
    return torch.nn.parallel.DistributedDataParallel(_LossForward(module), device_ids=ids, find_unused_parameters=True)


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_float(value: float | None, src: int = 0) -> float:
    """Rank ``src``'s ``value`` on every rank (None on the other ranks is fine)."""
    t = torch.tensor([float("nan") if value is None else float(value)], dtype=torch.float64, device=_device())
    dist.broadcast(t, src)
    return float(t.item())


def all_reduce_mean(values: dict[str, float], keys: Sequence[str]) -> dict[str, float]:
    """``values`` averaged over the ranks for ``keys`` (every rank must pass the same keys)."""
    if not keys:
        return dict(values)
    t = torch.tensor([float(values.get(k, 0.0)) for k in keys], dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return {**values, **{k: float(x) for k, x in zip(keys, t.tolist(), strict=True)}}


def torchrun_args(
    nproc: int,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
    rdzv_backend: str = "c10d",
    rdzv_id: str = "fusionrec",
) -> list[str]:
    """The ``torch.distributed.run`` arguments for ``nproc`` processes per node: a standalone
    rendezvous on a free local port for one node, else ``--nnodes``/``--node-rank`` and the
    ``--rdzv-endpoint`` every node must be given (host:port of a node all of them reach)."""
    if nproc < 1 or nnodes < 1:
        raise ValueError(f"--nproc and --nnodes must be >= 1, got {nproc} and {nnodes}")
    if not 0 <= node_rank < nnodes:
        raise ValueError(f"--node-rank {node_rank} outside 0..{nnodes - 1}")
    args = [f"--nproc-per-node={nproc}"]
    if nnodes == 1 and rdzv_endpoint is None:
        return [*args, "--standalone"]
    if rdzv_endpoint is None:
        raise ValueError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (the same on every node)")
    return [
        *args,
        f"--nnodes={nnodes}",
        f"--node-rank={node_rank}",
        f"--rdzv-backend={rdzv_backend}",
        f"--rdzv-endpoint={rdzv_endpoint}",
        f"--rdzv-id={rdzv_id}",
    ]
