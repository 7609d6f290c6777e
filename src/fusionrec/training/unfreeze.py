"""Progressive unfreezing: parameter groups that start training at a given epoch.

Used through config (``TrainConfig.progressive_unfreeze = {epoch: [name prefixes]}``: the shared
Trainer adds the callback itself) or in Python as a Trainer callback. It lives in training/
(not strategies/) because the Trainer builds it from the config; ``fusionrec.strategies.
curriculum`` re-exports it.

How a parameter is frozen: after backward, a post-accumulate-grad hook sets its ``.grad`` to
None while it is frozen, so every torch optimiser skips it (no update, no weight decay, no
Adam moments) — whether the callback was attached before or after the optimiser was built.
Once unfrozen it trains at its group's learning rate with fresh optimiser state.

Names are the module's ``named_parameters()``; a text encoder that a module keeps outside its
registered children (a ``TextFeatureBank`` keeps its encoder unregistered so the shared init
and the saved weights leave the pretrained weights alone) is addressed as
``<bank path>.encoder.<name>``, e.g. ``bank.encoder`` for every weight of ``lm_mf``'s encoder.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from fusionrec.errors import ConfigError

__all__ = ["ProgressiveUnfreezing", "unfreezable_parameters"]


def unfreezable_parameters(module: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Parameter]]:
    """The module's named parameters plus those of text encoders it keeps unregistered."""
    yield from module.named_parameters()
    registered = {id(m) for m in module.modules()}
    for path, sub in module.named_modules():
        enc = sub.__dict__.get("_encoder")  # TextFeatureBank: [encoder] kept off the children
        encoders = enc if isinstance(enc, list) else []
        for e in encoders:
            inner = getattr(e, "module", None)
            if isinstance(inner, torch.nn.Module) and id(inner) not in registered:
                prefix = f"{path}.encoder" if path else "encoder"
                for n, p in inner.named_parameters():
                    yield f"{prefix}.{n}", p


class ProgressiveUnfreezing:
    """Freeze parameter groups of a module and unfreeze them at given epochs.

    ``schedule`` maps an epoch (1-based: the first epoch the group trains) to parameter-name
    prefixes, e.g. ``{3: ["encoder.blocks.1"], 5: ["encoder"]}``: parameters matching a prefix
    (the name itself or ``prefix.``...) are frozen before that epoch and trained from it on. A
    parameter named in several groups trains from the earliest. Groups due at epoch 1 train
    from the start.

    As a Trainer callback: the Trainer calls ``on_train_begin(model, start_epoch)`` before the
    first epoch (attaching to ``model.module_`` and freezing what is not yet due, also when
    resuming at a later epoch) and ``cb(epoch, record)`` after each epoch, which unfreezes the
    groups due at ``epoch + 1``. ``attach(module)`` may also be called by hand beforehand.
    ``frozen`` holds the names still frozen.
    """

    def __init__(self, schedule: Mapping[int, Sequence[str]]) -> None:
        sched: dict[int, tuple[str, ...]] = {}
        for e, prefixes in schedule.items():
            if int(e) < 1:
                raise ConfigError(f"progressive unfreezing epochs must be >= 1, got {e}")
            if isinstance(prefixes, str) or not prefixes:
                raise ConfigError(
                    f"progressive unfreezing epoch {e}: give a list of parameter-name prefixes"
                )
            sched[int(e)] = tuple(prefixes)
        self.schedule = sched
        self.frozen: set[str] = set()
        self._module: torch.nn.Module | None = None
        self._params: dict[str, torch.nn.Parameter] = {}
        self._hooked: set[str] = set()

    def _names(self, prefixes: Sequence[str]) -> list[str]:
        names = [n for n in self._params if any(n == p or n.startswith(p + ".") for p in prefixes)]
        if not names:
            some = ", ".join(list(self._params)[:8])
            raise ConfigError(
                f"progressive unfreezing: no parameter matches {list(prefixes)} (names look like: {some})"
            )
        return names

    def _start_epoch(self) -> dict[str, int]:
        """Parameter name -> first epoch it trains (earliest group naming it)."""
        first: dict[str, int] = {}
        for epoch in sorted(self.schedule):
            for n in self._names(self.schedule[epoch]):
                first.setdefault(n, epoch)
        return first

    def attach(self, module: torch.nn.Module, start_epoch: int = 1) -> ProgressiveUnfreezing:
        """Freeze the groups not due by ``start_epoch`` (hooks are added once per parameter)."""
        if module is not self._module:
            self._module = module
            self._params = dict(unfreezable_parameters(module))
            self._hooked = set()
        first = self._start_epoch()
        self.frozen = {n for n, e in first.items() if e > start_epoch}
        for name in first:  # parameters that never train (requires_grad False) need no hook
            if name not in self._hooked and self._params[name].requires_grad:
                self._params[name].register_post_accumulate_grad_hook(self._hook(name))
                self._hooked.add(name)
        return self

    def _hook(self, name: str):
        def hook(p: torch.Tensor) -> None:
            if name in self.frozen:
                p.grad = None

        return hook

    def on_train_begin(self, model: Any, start_epoch: int) -> None:
        """Trainer hook: attach to ``model.module_`` as of ``start_epoch`` (1, or later on resume)."""
        self.attach(model.module_, start_epoch)

    def __call__(self, epoch: int, record: dict) -> None:
        """Trainer callback: unfreeze the groups due at ``epoch + 1``."""
        if self._module is None:
            return
        self.frozen = {n for n, e in self._start_epoch().items() if e > epoch + 1}
