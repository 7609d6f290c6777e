"""The one Trainer that runs every torch model's optimisation loop.

A model hands the Trainer three things: ``model.module_`` (an ``nn.Module`` whose
``loss(batch)`` returns a scalar tensor or a dict of named scalar losses, summed for the step),
``model.batches(dataset, rng)`` (an iterable of batch dicts for one epoch) and
``model.score_indices`` (used for full-ranking validation). The Trainer owns the optimiser,
early stopping with restore of the best weights, progress and the per-epoch history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from fusionrec.data.dataset import Dataset
from fusionrec.evaluation.evaluator import Evaluator, parse_metric
from fusionrec.training.config import TrainConfig

__all__ = ["Trainer", "TrainHistory", "resolve_device"]

log = logging.getLogger(__name__)


class Trainable(Protocol):
    config: TrainConfig
    module_: torch.nn.Module

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]: ...

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray: ...


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


@dataclass
class TrainHistory:
    """Per-epoch records: epoch, loss (and each named loss), valid metric, seconds."""

    records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False

    def as_frame(self):
        import pandas as pd

        return pd.DataFrame(self.records)


class Trainer:
    """Runs the loop for a ``Trainable`` model under ``config``.

    ``callbacks`` are called as ``cb(epoch, record)`` after each epoch.
    """

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callable[[int, dict], None]] = ()) -> None:
        self.config = config
        self.callbacks = list(callbacks)

    def _optimizer(self, params) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay)

    def fit(self, model: Trainable, train: Dataset, valid: Dataset | None, seed: int) -> TrainHistory:
        c = self.config
        rng = np.random.default_rng(seed)
        module = model.module_
        opt = self._optimizer([p for p in module.parameters() if p.requires_grad])
        hist = TrainHistory()
        metric_name, k = parse_metric(c.early_stop_metric)
        evaluator = Evaluator(metrics=(metric_name,), ks=(k,)) if valid is not None and valid.n_interactions else None
        best_state: dict[str, torch.Tensor] | None = None
        bad = 0
        bar = None
        if c.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=c.epochs, desc=f"train {getattr(model, 'name', '')}", leave=False)
        try:
            for epoch in range(1, c.epochs + 1):
                t0 = time.perf_counter()
                module.train()
                sums: dict[str, float] = {}
                n_batches = 0
                for batch in model.batches(train, rng):
                    out = module.loss(batch)
                    if isinstance(out, dict):
                        loss = sum(out.values())
                        for name, v in out.items():
                            sums[f"loss_{name}"] = sums.get(f"loss_{name}", 0.0) + float(v.detach())
                    else:
                        loss = out
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch}; lower lr?")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
                    n_batches += 1
                rec: dict[str, float] = {"epoch": epoch}
                rec.update({k2: v / max(n_batches, 1) for k2, v in sums.items()})
                if evaluator is not None and (epoch % c.eval_every == 0 or epoch == c.epochs):
                    module.eval()
                    res = evaluator.evaluate(model, valid, exclude=(train,))
                    val = res.metrics[c.early_stop_metric]
                    rec[f"valid_{c.early_stop_metric}"] = val
                    if hist.best_metric is None or val > hist.best_metric:
                        hist.best_metric, hist.best_epoch = val, epoch
                        best_state = {n: t.detach().clone() for n, t in module.state_dict().items()}
                        bad = 0
                    else:
                        bad += 1
                rec["seconds"] = time.perf_counter() - t0
                hist.records.append(rec)
                log.debug("epoch %d %s", epoch, rec)
                for cb in self.callbacks:
                    cb(epoch, rec)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k2: f"{v:.4f}" for k2, v in rec.items() if k2 not in ("epoch",)})
                if evaluator is not None and c.patience and bad >= c.patience:
                    hist.stopped_early = True
                    break
        finally:
            if bar is not None:
                bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        return hist
