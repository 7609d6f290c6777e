"""``FitOptions``: how and where a fit runs (never saved with the model).

A model's config holds only what defines the model and its training (results-affecting
settings such as ``lr``, ``epochs``, ``amp``). What describes the run — the device, CPU
threads, a progress bar, the run folder for checkpoints, resuming, callbacks — travels in
``FitOptions``, passed as ``model.fit(train, valid, seed=s, options=FitOptions(...))``. A folder
trained on a GPU therefore loads on a CPU server: ``load_model(path, device="auto")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionrec.errors import ConfigError

__all__ = ["FitOptions", "check_device", "fit_options"]

#: ``FitOptions`` field names (the run keys a model constructor still accepts, deprecated).
FIELDS = ("device", "cpu_threads", "progress", "run_dir", "resume", "callbacks")


def check_device(device: str) -> str:
    """``device`` if it names a torch device this project accepts, else a ConfigError."""
    if not isinstance(device, str) or (device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:")):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda:") and not device[5:].isdigit():
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


@dataclass(frozen=True)
class FitOptions:
    """Run options of ``Recommender.fit`` (none of them is saved with the model).

    Models without a torch module use none of them except where noted."""

    device: str = "auto"
    """'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'. Scoring after the fit runs on the
    same device (``load_model(path, device=...)`` chooses it for a loaded model)."""
    cpu_threads: int | None = 1
    """Torch intra-op threads while training/scoring on CPU (restored afterwards). 1 is fastest
    for recommender-sized models on a shared or small machine; None leaves torch's setting."""
    progress: bool = False
    """Show a per-epoch progress bar."""
    run_dir: str | Path | None = None
    """Folder for the Trainer's ``checkpoint/`` (after every epoch), ``log.csv`` and
    ``curve.png``; None keeps nothing on disk."""
    resume: bool = False
    """Continue from ``run_dir``'s last checkpoint (needs ``run_dir``)."""
    callbacks: tuple[Callable[[int, dict], Any], ...] = field(default=())
    """Called as ``cb(epoch, record)`` after each epoch (e.g. a tuning pruner); see
    ``fusionrec.training.Trainer``."""

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.cpu_threads is not None and (isinstance(self.cpu_threads, bool) or not isinstance(self.cpu_threads, int) or self.cpu_threads < 1):
            raise ConfigError(f"cpu_threads must be a positive integer or None, got {self.cpu_threads!r}")
        if not isinstance(self.progress, bool):
            raise ConfigError(f"progress must be True or False, got {self.progress!r}")
        if not isinstance(self.resume, bool):
            raise ConfigError(f"resume must be True or False, got {self.resume!r}")
        if self.resume and self.run_dir is None:
            raise ConfigError("resume=True needs a run_dir")
        if not isinstance(self.callbacks, tuple):
            if isinstance(self.callbacks, str | bytes) or not isinstance(self.callbacks, Iterable):
                raise ConfigError(f"callbacks must be an iterable of callables, got {self.callbacks!r}")
            object.__setattr__(self, "callbacks", tuple(self.callbacks))
        for cb in self.callbacks:
            if not callable(cb):
                raise ConfigError(f"callbacks must be callables, got {cb!r}")

    def nested(self) -> FitOptions:
        """Options for a model fitted or loaded inside another (an ensemble member, a
        distillation teacher): the same device, threads and progress; no run folder, resume or
        callbacks, which belong to the outer fit."""
        return FitOptions(device=self.device, cpu_threads=self.cpu_threads, progress=self.progress)

    def replace(self, **changes: Any) -> FitOptions:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def fit_options(options: FitOptions | dict[str, Any] | None = None, **changes: Any) -> FitOptions:
    """``options`` (a FitOptions, a dict of its fields or None = defaults) with ``changes``."""
    if options is None:
        options = FitOptions()
    elif isinstance(options, dict):
        unknown = sorted(set(options) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown fit options {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        options = FitOptions(**options)
    elif not isinstance(options, FitOptions):
        raise ConfigError(f"options must be a FitOptions, got {type(options).__name__}")
    return options.replace(**changes) if changes else options
