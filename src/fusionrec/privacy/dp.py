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
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.torch_base import TorchRecommender, cpu_threads, init_parameters
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
    optimizer: Literal["adam", "sgd"] = "adam"
    """Optimiser applied to the privatised gradient (post-processing: any choice keeps the budget)."""
    per_example: Literal["auto", "rows", "vmap"] = "auto"
    """How per-example gradients are computed: ``rows`` (models whose only parameters are embedding
    tables looked up once per example, e.g. BPR-MF: the gradient of each example's looked-up rows,
    O(B x d) per step), ``vmap`` (torch.func over the whole module: any per-example loss, but
    dense B x parameters per step), ``auto`` = rows where it applies."""


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


def _rows_apply(module: torch.nn.Module) -> bool:
    """True when every trainable parameter is the weight of an ``nn.Embedding``."""
    emb = {id(m.weight) for m in module.modules() if isinstance(m, torch.nn.Embedding)}
    return all(id(p) in emb for p in module.parameters() if p.requires_grad)


def _row_grads(wrapped: _LossOf, module: torch.nn.Module, example: dict[str, torch.Tensor]) -> list[tuple[torch.nn.Embedding, torch.Tensor, torch.Tensor]]:
    """(table, looked-up indices (B, ...), gradient of the summed loss w.r.t. the looked-up rows
    (B, ..., d)) for every embedding lookup of one batch. Row b of each lookup belongs to
    example b only, so these are the per-example gradients.

    Raises:
        ConfigError: a lookup whose first dimension is not the batch (rows shared by examples).
    """
    calls: list[tuple[torch.nn.Embedding, torch.Tensor, torch.Tensor]] = []

    def hook(mod: torch.nn.Module, inp: tuple, out: torch.Tensor) -> None:
        out.retain_grad()
        calls.append((mod, inp[0], out))  # type: ignore[arg-type]

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Embedding)]
    try:
        n = len(next(iter(example.values())))
        loss = wrapped(example) * n  # the module's loss is a mean over the batch
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    if not calls:
        raise ConfigError("the module looks up no rows through nn.Embedding calls; per_example='rows' does not apply (use 'vmap')")
    for _, idx, _out in calls:
        if idx.shape[0] != n:
            raise ConfigError("an embedding lookup is shared by the batch; per_example='rows' does not apply (use 'vmap')")
    return [(mod, idx, out.grad if out.grad is not None else torch.zeros_like(out)) for mod, idx, out in calls]


def _clipped_sum(calls: list[tuple[torch.nn.Embedding, torch.Tensor, torch.Tensor]], clip: float) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Per-example L2 clipping to ``clip`` of the sparse per-example gradients, summed into each
    table; returns ``{id(weight): summed clipped gradient}`` and the per-example norms. A row an
    example looks up twice (the same item as positive and negative) is summed before its norm."""
    n = calls[0][1].shape[0]
    by_table: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
    for mod, idx, g in calls:
        d = g.shape[-1]
        ex = torch.arange(n, device=g.device).view(-1, *([1] * (idx.dim() - 1))).expand_as(idx)
        by_table.setdefault(id(mod.weight), []).append((ex.reshape(-1), idx.reshape(-1), g.reshape(-1, d)))
    sq = torch.zeros(n, device=calls[0][2].device, dtype=torch.float32)
    merged: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    for key, parts in by_table.items():
        ex = torch.cat([p[0] for p in parts])
        idx = torch.cat([p[1] for p in parts])
        g = torch.cat([p[2] for p in parts]).float()
        n_rows = int(idx.max()) + 1
        uniq, inv = torch.unique(ex * n_rows + idx, return_inverse=True)
        summed = torch.zeros(len(uniq), g.shape[1], device=g.device).index_add_(0, inv, g)
        sq.index_add_(0, uniq // n_rows, summed.pow(2).sum(1))
        merged[key] = (uniq // n_rows, uniq % n_rows, summed)
    norms = sq.sqrt()
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)
    out = {key: (ex, idx, g * factor[ex, None]) for key, (ex, idx, g) in merged.items()}
    return {key: (idx, g) for key, (_, idx, g) in out.items()}, norms  # type: ignore[misc]


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
    opt_cls = torch.optim.Adam if dp.optimizer == "adam" else torch.optim.SGD
    base_opt = opt_cls(list(params.values()), lr=dp.lr)
    accountant = create_accountant(dp.accountant)
    use_rows = dp.per_example == "rows" or (dp.per_example == "auto" and _rows_apply(module))
    if getattr(module, "closed_form", False):
        # BPR's fused closed-form gradient reads the tables without nn.Embedding calls: both
        # per-example paths need the plain lookups (same loss, same values)
        module.closed_form = False
    if dp.per_example == "rows" and not _rows_apply(module):
        raise ConfigError(f"{model.name}: per_example='rows' needs a module whose only parameters are embedding tables")
    opt: torch.optim.Optimizer = base_opt
    gen_noise = torch.Generator(device=model.device_).manual_seed(seed + 1)
    if private and not use_rows:
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

    def rows_step(example: dict[str, torch.Tensor], shared: dict[str, torch.Tensor]) -> None:
        """Clip each example's sparse row gradients, sum, add N(0, (sigma C)^2) to every row
        of every table, divide by the expected batch size (what opacus' DPOptimizer does with
        dense per-example gradients), record the step in opacus' accountant."""
        opt.zero_grad(set_to_none=True)
        sums: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if len(next(iter(example.values()))):
            sums, _ = _clipped_sum(_row_grads(wrapped, module, example | shared), dp.max_grad_norm)
        for p in params.values():
            g = torch.zeros_like(p)
            if id(p) in sums:
                rows, vals = sums[id(p)]
                g.index_add_(0, rows, vals.to(g.dtype))
            noise = torch.randn(p.shape, generator=gen_noise, device=p.device, dtype=p.dtype)
            p.grad = (g + sigma * dp.max_grad_norm * noise) / dp.batch_size
        opt.step()
        accountant.step(noise_multiplier=sigma, sample_rate=q)

    last = float("nan")
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    threads = cpu_threads(model.fit_options_.cpu_threads, model.device_)
    threads.__enter__()
    try:
        for _ in range(dp.epochs):
            pool, shared_list = _epoch_pool(model, dataset, rng)
            n_pool = len(next(iter(pool.values())))
            for t in range(steps_per_epoch):
                mask = torch.from_numpy(rng.random(n_pool) < q).to(model.device_)
                idx = mask.nonzero().squeeze(1)
                shared = shared_list[t % len(shared_list)]
                example = {k: v[idx] for k, v in pool.items()}
                if use_rows and private:
                    rows_step(example, shared)
                elif use_rows:
                    opt.zero_grad(set_to_none=True)
                    if len(idx):
                        wrapped(example | shared).backward()
                        opt.step()
                else:
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
                if t == steps_per_epoch - 1 and len(idx):
                    with torch.no_grad():
                        last = float(wrapped(example | shared))
    finally:
        threads.__exit__(None, None, None)
        torch.random.set_rng_state(torch_state)
    module.eval()
    model.module_ = module
    model.fitted_ = True
    eps = float(accountant.get_epsilon(dp.delta)) if private else math.inf
    return DPReport(
        epsilon=eps, delta=dp.delta, noise_multiplier=float(sigma), sample_rate=q, steps=total,
        max_grad_norm=dp.max_grad_norm, accountant=dp.accountant, final_loss=last,
    )
