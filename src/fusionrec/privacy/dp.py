"""DP-SGD for torch recommenders through opacus (clipping, noise and the RDP accountant).

``fit_private(model, train, DPConfig(target_epsilon=3))`` trains any
:class:`~fusionrec.models.torch_base.TorchRecommender` whose module's ``loss(batch)`` is a mean
of per-example losses (BPR/MF; two-tower with ``loss="sampled"``, whose negatives are drawn
independently of the data) and returns a :class:`DPReport` with (epsilon, delta) read from
opacus' accountant. The fitted model saves and loads like any other of its kind.

How: each step draws a Poisson sample of the training examples (rate ``q = batch_size / N``,
the sampling opacus' accountant assumes), computes per-example gradients of the whole loss
with ``torch.func`` (vmap of grad; opacus' per-layer hooks cannot see a tower applied both to
the batch and to shared negatives), hands them to opacus' ``DPOptimizer`` as ``grad_sample``
(per-example clipping to ``max_grad_norm``, Gaussian noise ``sigma * max_grad_norm``) and lets
opacus' RDP accountant record the step. The noise multiplier for a target epsilon comes from
opacus' ``get_noise_multiplier`` for the planned number of steps.

Privacy unit: one training interaction (example-level DP). A user with many interactions is
protected per interaction, not as a whole (user-level DP needs per-user clipping).
``target_epsilon=inf`` runs the same loop without clipping or noise (the utility reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.torch_base import TorchRecommender, init_parameters
from fusionrec.training.options import FitOptions, fit_options
from fusionrec.training.trainer import resolve_device

__all__ = ["DPConfig", "DPReport", "fit_private", "epsilon_for"]


class DPConfig(BaseModel):
    """DP-SGD settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_epsilon: float = Field(3.0, gt=0)
    """Privacy budget for the whole run (``inf`` = no clipping, no noise)."""
    delta: float = Field(1e-5, gt=0, lt=1)
    """Target delta; keep it below 1 / number of training interactions."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Per-example gradient L2 clipping bound C."""
    noise_multiplier: float | None = Field(None, ge=0)
    """Fix sigma instead of deriving it from ``target_epsilon`` (then epsilon is reported)."""
    epochs: int = Field(5, ge=1)
    """Passes over the data (steps = epochs / q)."""
    batch_size: int = Field(512, ge=1)
    """Expected Poisson batch size (sample rate q = batch_size / N)."""
    lr: float = Field(5e-3, gt=0)
    """Adam learning rate."""
    accountant: str = "rdp"
    """opacus accountant: rdp, prv or gdp."""


@dataclass(frozen=True)
class DPReport:
    """What the run spent: (epsilon, delta) from opacus' accountant and the settings behind it."""

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    accountant: str
    final_loss: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def epsilon_for(noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp") -> float:
    """Epsilon opacus' accountant gives for ``steps`` DP-SGD steps at these settings."""
    from opacus.accountants import create_accountant

    acc = create_accountant(accountant)
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta))


class _LossOf(torch.nn.Module):
    """forward(batch) = the sum of ``module.loss(batch)`` (for torch.func.functional_call)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.m = module

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.m.loss(batch)
        return sum(v.float() for v in out.values()) if isinstance(out, dict) else out.float()


def _epoch_pool(model: TorchRecommender, dataset: Dataset, rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    """One epoch of the model's batches split into per-example tensors (concatenated) and the
    batches' shared tensors (e.g. a softmax's sampled negatives), in batch order."""
    per: dict[str, list[torch.Tensor]] = {}
    shared: list[dict[str, torch.Tensor]] = []
    for b in model.batches(dataset, rng):
        n = len(next(iter(b.values())))
        keys = [k for k, v in b.items() if torch.is_tensor(v) and v.dim() > 0 and len(v) == n]
        first_key = next(iter(b))
        if per and set(per) != set(keys):
            keys = list(per)
        for k in keys:
            per.setdefault(k, []).append(b[k])
        shared.append({k: v for k, v in b.items() if k not in keys})
        del first_key
    return {k: torch.cat(v) for k, v in per.items()}, shared


def _check_module(model: TorchRecommender) -> None:
    if getattr(model.config, "loss", None) == "in_batch":
        raise ConfigError(
            f"{model.name}: DP-SGD needs per-example losses; the in-batch softmax mixes the "
            "examples of a batch (set loss='sampled')"
        )


def _prepare_fitted_state(model: TorchRecommender, dataset: Dataset, options: FitOptions | None) -> None:
    """The fields ``Recommender.fit`` sets before ``_fit`` (ids, seen items, popularity)."""
    model.fit_options_ = fit_options(model.default_options if options is None else options)
    model.check_dataset(dataset)
    model.users_ = dataset.users
    model.items_ = dataset.items
    seen = dataset.matrix("csr")
    model.seen_ = sp.csr_matrix((seen.data.copy(), seen.indices.copy(), seen.indptr.copy()), shape=seen.shape)
    model.item_pop_ = dataset.item_popularity().astype(np.float32)
    titles = dataset.item_titles()
    model.item_titles_ = None if titles is None else np.asarray(titles, dtype=str)


def fit_private(
    model: TorchRecommender,
    dataset: Dataset,
    dp: DPConfig | None = None,
    seed: int = 0,
    *,
    options: FitOptions | None = None,
) -> DPReport:
    """Train ``model`` on ``dataset`` with DP-SGD (see module doc); the model ends fitted.

    Raises:
        ConfigError: the model's loss is not a mean of per-example losses, or the settings
            give a sample rate above 1.
    """
    from opacus.accountants import create_accountant
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.optimizers import DPOptimizer

    dp = dp or DPConfig()
    _check_module(model)
    _prepare_fitted_state(model, dataset, options)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model.device_ = resolve_device(model.fit_options_.device)
    model._prepare(dataset, rng)
    module = model.build_module()
    init_parameters(module, gen, std=model._init_std())
    module.to(model.device_).train()
    n = dataset.n_interactions
    q = dp.batch_size / n
    if q > 1:
        raise ConfigError(f"batch_size {dp.batch_size} exceeds the {n} training interactions")
    steps_per_epoch = max(1, round(1 / q))
    total = steps_per_epoch * dp.epochs
    private = math.isfinite(dp.target_epsilon) or dp.noise_multiplier is not None
    if dp.noise_multiplier is not None:
        sigma = dp.noise_multiplier
    elif private:
        sigma = get_noise_multiplier(
            target_epsilon=dp.target_epsilon, target_delta=dp.delta, sample_rate=q, steps=total, accountant=dp.accountant
        )
    else:
        sigma = 0.0
    wrapped = _LossOf(module)
    params = {k: p for k, p in wrapped.named_parameters() if p.requires_grad}
    buffers = dict(wrapped.named_buffers())
    base_opt = torch.optim.Adam(list(params.values()), lr=dp.lr)
    accountant = create_accountant(dp.accountant)
    opt: torch.optim.Optimizer = base_opt
    if private:
        gen_noise = torch.Generator(device=model.device_).manual_seed(seed + 1)
        opt = DPOptimizer(
            base_opt, noise_multiplier=sigma, max_grad_norm=dp.max_grad_norm,
            expected_batch_size=dp.batch_size, loss_reduction="mean", generator=gen_noise,
        )
        opt.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=q))

    def one_loss(p: dict, b: dict, example: dict, shared: dict) -> torch.Tensor:
        batch = {k: v.unsqueeze(0) for k, v in example.items()} | shared
        return torch.func.functional_call(wrapped, (p, b), (batch,))

    per_example_grad = torch.func.vmap(
        torch.func.grad(one_loss), in_dims=(None, None, 0, None), randomness="different"
    )
    last = float("nan")
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for _ in range(dp.epochs):
            pool, shared_list = _epoch_pool(model, dataset, rng)
            n_pool = len(next(iter(pool.values())))
            for t in range(steps_per_epoch):
                mask = torch.from_numpy(rng.random(n_pool) < q).to(model.device_)
                idx = mask.nonzero().squeeze(1)
                shared = shared_list[t % len(shared_list)]
                example = {k: v[idx] for k, v in pool.items()}
                opt.zero_grad(set_to_none=True)
                if len(idx) == 0:
                    if private:  # an empty Poisson draw still takes a (noise-only) step
                        for p in params.values():
                            p.grad_sample = torch.zeros((0, *p.shape), device=p.device)
                        opt.step()
                    continue
                detached = {k: p.detach() for k, p in params.items()}
                grads = per_example_grad(detached, buffers, example, shared)
                if private:
                    for k, p in params.items():
                        p.grad_sample = grads[k]
                else:
                    for k, p in params.items():
                        p.grad = grads[k].mean(0)
                opt.step()
                if t == steps_per_epoch - 1:
                    with torch.no_grad():
                        last = float(wrapped(example | shared))
    finally:
        torch.random.set_rng_state(torch_state)
    module.eval()
    model.module_ = module
    model.fitted_ = True
    eps = float(accountant.get_epsilon(dp.delta)) if private else math.inf
    return DPReport(
        epsilon=eps, delta=dp.delta, noise_multiplier=float(sigma), sample_rate=q, steps=total,
        max_grad_norm=dp.max_grad_norm, accountant=dp.accountant, final_loss=last,
    )
