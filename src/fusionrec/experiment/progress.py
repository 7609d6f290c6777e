"""Say what a long run is doing: a per-epoch callback that reports the epoch, the time per epoch
and the most time left (the epoch budget; early stopping may end sooner)."""

from __future__ import annotations

import time
from collections.abc import Callable

from fusionrec.experiment.config import ExperimentConfig

__all__ = ["EpochProgress", "epoch_budget", "format_duration"]


def epoch_budget(config: ExperimentConfig) -> int | None:
    """The model's maximum epochs (its params, else its config default); None when the model is
    not trained by epochs."""
    from fusionrec.models.registry import get_model

    fields = get_model(config.model.name).Config.model_fields
    if "epochs" not in fields:
        return None
    return int(config.model_params().get("epochs", fields["epochs"].default))


def format_duration(seconds: float) -> str:
    """'40 s', '6 min', '1.5 h'."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EpochProgress:
    """``cb(epoch, record)`` for ``RunOptions.callbacks``: calls ``report(line)`` every
    ``every`` epochs. ``start(label, max_epochs)`` before each model (``run_many``'s
    ``on_start``)."""

    def __init__(self, report: Callable[[str], None], every: int = 1) -> None:
        self.report = report
        self.every = max(1, every)
        self.start("model", None)

    def start(self, label: str, max_epochs: int | None) -> None:
        self.label, self.max_epochs = label, max_epochs
        self._t0 = time.perf_counter()

    def line(self, epoch: int, record: dict) -> str:
        per_epoch = (time.perf_counter() - self._t0) / max(epoch, 1)
        out = f"{self.label}: epoch {epoch}"
        if self.max_epochs:
            out += f"/{self.max_epochs}"
        out += f" · {per_epoch:.1f} s/epoch"
        metric = next((k for k in record if k.startswith("valid_")), None)
        if metric is not None:
            out += f" · {metric[6:]} {float(record[metric]):.4f}"
        if self.max_epochs and epoch < self.max_epochs:
            left = format_duration((self.max_epochs - epoch) * per_epoch)
            out += f" · at most {left} left (early stopping may end sooner)"
        return out

    def __call__(self, epoch: int, record: dict) -> None:
        if epoch % self.every == 0 or epoch == self.max_epochs:
            self.report(self.line(epoch, record))
