"""The one Trainer that runs every torch model's optimisation loop.

A model hands the Trainer three things: ``model.module_`` (an ``nn.Module`` whose
``loss(batch)`` returns a scalar tensor or a dict of named scalar losses, summed for the step),
``model.batches(dataset, rng)`` (an iterable of batch dicts for one epoch) and
``model.score_indices`` (used for full-ranking validation). The Trainer owns the optimiser,
early stopping with restore of the best weights, progress and the per-epoch history, and gives
every model for free (all set in ``TrainConfig``): mixed precision (``amp``), gradient
accumulation, per-epoch learning-rate schedules, gradient clipping. Its run settings come from
:class:`~fusionrec.training.FitOptions`: a progress bar, callbacks and — given a ``run_dir`` —
a checkpoint after every epoch (resumable bit-for-bit), an epoch log CSV (``log.csv``) and a
training-curve PNG (``curve.png``). Inside an initialised ``torch.distributed`` process group of
several ranks it trains data-parallel (``training.distributed``: each batch cut across the
ranks, a DDP-wrapped module, rank 0 validates and writes, the decision broadcast).

The number of samples in a batch (for samples/second) is the leading dimension of the batch's
first tensor value, or ``batch["n_samples"]`` when a model sets it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from fusionrec.config.vocabulary import RUN_KEYS
from fusionrec.data.dataset import Dataset
from fusionrec.evaluation.evaluator import Evaluator, parse_metric
from fusionrec.training._checkpoint import (
    load_checkpoint,
    numpy_rng_state,
    save_checkpoint,
    write_curve_png,
    write_log_csv,
)
from fusionrec.training.config import TrainConfig
from fusionrec.training.distributed import all_reduce_mean, broadcast_float, ddp_wrap, shard_batch
from fusionrec.training.distributed import context as dist_context
from fusionrec.training.options import FitOptions, check_device, fit_options

__all__ = ["Trainer", "TrainHistory", "resolve_device", "lr_factor", "Callback"]

Callback = Callable[[int, dict], None]

log = logging.getLogger(__name__)


class Trainable(Protocol):
    config: TrainConfig
    module_: torch.nn.Module

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]: ...

    def score_indices(
        self, user_idx: np.ndarray, item_idx: np.ndarray | None = None
    ) -> np.ndarray: ...


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """Multiplier of ``config.lr`` during ``epoch`` (1-based) under the configured schedule.

    - warm-up (``warmup_epochs`` = W > 0, any schedule): epochs 1..W get e/W;
    - ``constant``: 1;
    - ``step``: ``lr_gamma ** ((e - 1) // lr_step_size)``;
    - ``cosine``: from 1 at epoch 1 down to ``lr_min_ratio`` at the last epoch;
    - ``linear_warmup_cosine``: warm-up, then the cosine over the remaining epochs.
    """
    c = config
    w = c.warmup_epochs
    if w and epoch <= w:
        return epoch / w
    if c.lr_schedule == "constant":
        return 1.0
    if c.lr_schedule == "step":
        return c.lr_gamma ** ((epoch - 1) // c.lr_step_size)
    first = w + 1 if c.lr_schedule == "linear_warmup_cosine" else 1
    span = max(c.epochs - first, 1)
    t = min(max(epoch - first, 0) / span, 1.0)
    return c.lr_min_ratio + (1.0 - c.lr_min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def _n_samples(batch: dict[str, Any]) -> int:
    if "n_samples" in batch:
        return int(batch["n_samples"])
    for v in batch.values():
        if torch.is_tensor(v) and v.dim() > 0:
            return int(v.shape[0])
    return 0


def resolve_device(name: str) -> torch.device:
    """The torch device ``name`` ('auto' = CUDA when present, else CPU) names."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


@dataclass
class TrainHistory:
    """Per-epoch records: epoch, loss (and each named loss), valid metric, lr, seconds,
    samples_per_s (training samples per second of the epoch's training part), and grad_norm
    (mean pre-clipping gradient norm, only when clipping)."""

    records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False

    def as_frame(self):
        import pandas as pd

        return pd.DataFrame(self.records)


class Trainer:
    """Runs the loop for a ``Trainable`` model under ``config``.

    Args:
        config: the training settings (usually the model's own config).
        options: the run settings (:class:`~fusionrec.training.FitOptions`): ``progress``,
            ``callbacks``, ``run_dir`` and ``resume`` are used here (the model places its module
            on ``options.device``). The ``callbacks``/``run_dir``/``resume`` keywords are folded
            into it (kept for callers written before FitOptions).
        callbacks: called as ``cb(epoch, record)`` after each epoch (after the checkpoint is
            written); ``record`` holds the epoch's losses, ``valid_<metric>`` when evaluated,
            ``lr``, ``seconds`` and ``samples_per_s``. An exception raised by a callback (e.g.
            Optuna's ``TrialPruned``) ends training and propagates. A callback that has an
            ``on_train_begin(model, start_epoch)`` method gets that call once before the first
            epoch runs (after the optimiser is built and a checkpoint restored; ``start_epoch``
            is 1, or the epoch a resumed run continues at). ``config.progressive_unfreeze``
            adds a :class:`~fusionrec.training.unfreeze.ProgressiveUnfreezing` callback first.
        run_dir: folder for ``checkpoint/`` (written after every epoch), ``log.csv`` and
            ``curve.png``; None = keep nothing on disk.
        resume: continue from ``run_dir/checkpoint`` when present (the module is built and
            initialised as usual, then its weights, the optimiser, the schedule, the scaler,
            the numpy and torch RNG states and the early-stopping counters are restored), so
            an interrupted run ends with the same weights as an uninterrupted one.
    """

    def __init__(
        self,
        config: TrainConfig,
        options: FitOptions | None = None,
        *,
        callbacks: Iterable[Callback] | None = None,
        run_dir: str | Path | None = None,
        resume: bool | None = None,
    ) -> None:
        changes: dict[str, Any] = {}
        if callbacks is not None:
            changes["callbacks"] = tuple(callbacks)
        if run_dir is not None:
            changes["run_dir"] = run_dir
        if resume is not None:
            changes["resume"] = resume
        self.options = fit_options(options, **changes)
        self.config = config
        self.callbacks = list(self.options.callbacks)
        self.run_dir = None if self.options.run_dir is None else Path(self.options.run_dir)
        self.resume = self.options.resume

    def _optimizer(self, params) -> torch.optim.Optimizer:
        c = self.config
        # fused=None keeps torch's default implementation (bit-for-bit as before)
        fused = True if getattr(c, "fused_optimizer", False) else None
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, fused=fused)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, fused=fused)
        return torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay, fused=fused)

    def fit(
        self, model: Trainable, train: Dataset, valid: Dataset | None, seed: int
    ) -> TrainHistory:
        """Train ``model.module_`` in place; returns the history (best weights restored)."""
        c = self.config
        rng = np.random.default_rng(seed)
        module = model.module_
        # optional hook: a module may define param_groups(lr) -> [{"params": [...], "lr": ...}, ...]
        # (e.g. a fine-tuned language model at its own learning rate); else one group of all
        groups_fn = getattr(module, "param_groups", None)
        groups = groups_fn(c.lr) if callable(groups_fn) else None
        params = (
            [p for g in groups for p in g["params"]]
            if groups
            else [p for p in module.parameters() if p.requires_grad]
        )
        # optional hook: a module may define make_optimizer(config, params) -> Optimizer | None
        # (e.g. BPR's row-sparse SGD); None keeps the configured optimiser
        make_opt = getattr(module, "make_optimizer", None)
        opt = make_opt(c, groups or params) if callable(make_opt) else None
        opt = opt if opt is not None else self._optimizer(groups or params)
        base_lrs = [g["lr"] for g in opt.param_groups]
        device = params[0].device if params else torch.device("cpu")
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(c.amp)
        scaler = torch.amp.GradScaler(device.type, enabled=c.amp == "fp16")
        hist = TrainHistory()
        metric_name, k = parse_metric(c.early_stop_metric)
        evaluator = (
            Evaluator(metrics=(metric_name,), ks=(k,))
            if valid is not None and valid.n_interactions
            else None
        )
        best_state: dict[str, torch.Tensor] | None = None
        bad = 0
        start = 1
        ctx = dist_context()  # None: one process; else data-parallel over the group's ranks
        main = ctx is None or ctx.is_main  # validates, writes the run folder, shows progress
        ddp = ddp_wrap(module) if ctx is not None else None
        if self.resume:
            ck = load_checkpoint(self.run_dir, opt)
            if ck is not None:
                saved = {k: v for k, v in (ck.get("config") or {}).items() if k not in RUN_KEYS}
                if saved != c.model_dump(mode="json"):
                    log.warning(
                        "resuming %s with a training config different from the checkpoint's",
                        self.run_dir,
                    )
                module.load_state_dict(ck["module_state"])
                best_state = ck["best_state"]
                if best_state is not None:
                    best_state = {n: t.to(device) for n, t in best_state.items()}
                rng.bit_generator.state = ck["numpy_rng"]
                if ck["scaler"]:
                    scaler.load_state_dict(ck["scaler"])
                hist.records = ck["records"]
                hist.best_epoch, hist.best_metric = ck["best_epoch"], ck["best_metric"]
                hist.stopped_early = ck["stopped_early"]
                bad = ck["bad"]
                start = ck["epoch"] + 1
                log.info("resumed %s after epoch %d", self.run_dir, ck["epoch"])
        callbacks = list(self.callbacks)
        if getattr(c, "progressive_unfreeze", None):
            from fusionrec.training.unfreeze import ProgressiveUnfreezing

            callbacks.insert(0, ProgressiveUnfreezing(c.progressive_unfreeze))
        for cb in callbacks:  # optional hook, after the optimiser is built and any resume
            begin = getattr(cb, "on_train_begin", None)
            if callable(begin):
                begin(model, start)
        bar = None
        if self.options.progress and main:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=c.epochs,
                initial=start - 1,
                desc=f"train {getattr(model, 'name', '')}",
                leave=False,
            )
        try:
            for epoch in range(start, c.epochs + 1):
                if hist.stopped_early:
                    break
                t0 = time.perf_counter()
                lr = c.lr * lr_factor(c, epoch)
                for g, base_lr in zip(opt.param_groups, base_lrs, strict=True):
                    g["lr"] = base_lr * lr_factor(c, epoch)
                module.train()
                sums: dict[str, float] = {}
                n_batches = n_samples = pending = 0
                norms: list[float] = []
                opt.zero_grad(set_to_none=True)
                for batch in model.batches(train, rng):
                    weight = 1.0
                    if ctx is not None:  # this rank's slice of the global batch
                        batch, weight = shard_batch(batch, ctx.rank, ctx.world_size)
                    with torch.autocast(
                        device.type,
                        dtype=amp_dtype or torch.bfloat16,
                        enabled=amp_dtype is not None,
                    ):
                        out = module.loss(batch) if ddp is None else ddp(batch)
                    if isinstance(out, dict):
                        loss = sum(v.float() for v in out.values())
                        for name, v in out.items():
                            sums[f"loss_{name}"] = sums.get(f"loss_{name}", 0.0) + weight * float(v.detach())
                    else:
                        loss = out.float()
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"loss became {float(loss.detach())} at epoch {epoch}; lower lr?"
                        )
                    scaled = loss / c.grad_accum_steps if c.grad_accum_steps > 1 else loss
                    if ctx is not None:  # DDP averages: weighted, it is the global batch's mean
                        scaled = scaled * weight
                    scaler.scale(scaled).backward()
                    pending += 1
                    if pending == c.grad_accum_steps:
                        self._step(opt, scaler, params, norms)
                        pending = 0
                    sums["loss"] = sums.get("loss", 0.0) + weight * float(loss.detach())
                    n_batches += 1
                    n_samples += _n_samples(batch)
                if pending:
                    self._step(opt, scaler, params, norms)
                train_s = time.perf_counter() - t0
                if ctx is not None:  # weighted losses averaged over the ranks (the global mean), samples summed
                    sums["n_samples"] = float(n_samples)
                    sums = all_reduce_mean(sums, sorted(sums))
                    n_samples = round(sums.pop("n_samples") * ctx.world_size)
                rec: dict[str, float] = {"epoch": epoch}
                rec.update({k2: v / max(n_batches, 1) for k2, v in sums.items()})
                if norms:
                    rec["grad_norm"] = float(np.mean(norms))
                if evaluator is not None and (epoch % c.eval_every == 0 or epoch == c.epochs):
                    module.eval()
                    val = None
                    if main:
                        res = evaluator.evaluate(model, valid, exclude=(train,))
                        val = res.metrics[c.early_stop_metric]
                    if ctx is not None:  # every rank takes rank 0's decision
                        val = broadcast_float(val)
                    rec[f"valid_{c.early_stop_metric}"] = val
                    if hist.best_metric is None or val > hist.best_metric:
                        hist.best_metric, hist.best_epoch = val, epoch
                        best_state = {n: t.detach().clone() for n, t in module.state_dict().items()}
                        bad = 0
                    else:
                        bad += 1
                rec["lr"] = lr
                rec["seconds"] = time.perf_counter() - t0
                rec["samples_per_s"] = n_samples / train_s if train_s > 0 else 0.0
                hist.records.append(rec)
                if evaluator is not None and c.patience and bad >= c.patience:
                    hist.stopped_early = True
                log.debug("epoch %d %s", epoch, rec)
                if self.run_dir is not None and main:
                    self._save(module, best_state, opt, scaler, rng, hist, bad, epoch)
                for cb in callbacks:
                    cb(epoch, rec)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        {k2: f"{v:.4f}" for k2, v in rec.items() if k2 not in ("epoch",)}
                    )
        finally:
            if bar is not None:
                bar.close()
            if self.run_dir is not None and hist.records and main:
                try:
                    write_curve_png(
                        self.run_dir / "curve.png", hist.records, getattr(model, "name", "")
                    )
                except Exception as e:  # a plotting failure must not lose the training
                    log.warning("could not write the training curve: %s", e)
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        return hist

    def _step(
        self,
        opt: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        params: list,
        norms: list[float],
    ) -> None:
        if self.config.clip_grad_norm is not None:
            scaler.unscale_(opt)
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, self.config.clip_grad_norm)))
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    def _save(
        self, module, best_state, opt, scaler, rng, hist: TrainHistory, bad: int, epoch: int
    ) -> None:
        state = {
            "epoch": epoch,
            "numpy_rng": numpy_rng_state(rng),
            "scheduler": {
                "name": self.config.lr_schedule,
                "last_epoch": epoch,
                "lr": opt.param_groups[0]["lr"],
            },
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "records": hist.records,
            "best_epoch": hist.best_epoch,
            "best_metric": hist.best_metric,
            "stopped_early": hist.stopped_early,
            "bad": bad,
            "config": self.config.model_dump(mode="json"),
        }
        save_checkpoint(
            self.run_dir,
            module_state=module.state_dict(),
            best_state=best_state,
            optimizer=opt,
            state=state,
        )
        write_log_csv(self.run_dir / "log.csv", hist.records)
