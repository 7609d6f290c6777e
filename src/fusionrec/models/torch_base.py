"""TorchRecommender: models that own an ``nn.Module`` and are trained by the shared Trainer."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ModelStateError
from fusionrec.models.base import Recommender
from fusionrec.training.config import TrainConfig
from fusionrec.training.options import FitOptions, fit_options
from fusionrec.training.trainer import Trainer, TrainHistory, resolve_device

__all__ = ["TorchRecommender", "init_parameters", "cpu_threads"]


@contextmanager
def cpu_threads(n: int | None, device: torch.device | None = None) -> Iterator[None]:
    """Temporarily run torch CPU ops on ``n`` intra-op threads (restored on exit).

    Small recommender kernels spend more time synchronising threads than computing; with the
    cores shared, 2 threads measured 10-30x slower than 1 for BPR on ml-100k."""
    if n is None or (device is not None and device.type != "cpu"):
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def init_parameters(module: torch.nn.Module, generator: torch.Generator, std: float = 0.0) -> None:
    """Deterministic init from ``generator``: matrices xavier-normal (or N(0, std) if std>0), other
    vectors zero, normalisation layers identity (weight 1, bias 0)."""
    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._NormBase)
    norm_params = set()
    for m in module.modules():
        if isinstance(m, norm_types):  # norm layers keep their identity init (weight 1, bias 0)
            norm_params.update(id(p) for p in m.parameters(recurse=False))
            with torch.no_grad():
                if getattr(m, "weight", None) is not None:
                    m.weight.fill_(1.0)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
    with torch.no_grad():
        for p in module.parameters():
            if id(p) in norm_params:
                continue
            if p.dim() >= 2:
                if std > 0:
                    p.normal_(0.0, std, generator=generator)
                else:
                    torch.nn.init.xavier_normal_(p, generator=generator)
            else:
                p.zero_()


class TorchRecommender(Recommender):
    """Base of torch models. Subclasses implement:

    - ``build_module()``: the ``nn.Module`` (with ``loss(batch)``), from ``self.n_users``,
      ``self.n_items``, the config and anything ``_prepare`` stored;
    - ``batches(dataset, rng)``: one epoch of batch dicts (tensors on ``self.device_``);
    - ``score_tensor(users, items)``: scores as a tensor;
    - optionally ``_prepare(dataset)`` / ``_extra_state()`` / ``_load_extra_state()`` for arrays
      the module needs that are not parameters (feature matrices, graphs).

    ``fit(..., options=FitOptions(...))`` runs on ``options.device`` with ``options.cpu_threads``
    and hands ``progress``, ``run_dir`` (checkpoints, log.csv, curve.png), ``resume`` (continue
    from ``run_dir``'s last checkpoint) and ``callbacks`` (``cb(epoch, record)`` after each
    epoch, e.g. a tuning pruner) to the Trainer. Scoring uses the device and threads of the
    last ``fit`` or of ``load_model(path, device=...)``.
    """

    Config: ClassVar[type[TrainConfig]] = TrainConfig

    @abstractmethod
    def build_module(self) -> torch.nn.Module: ...

    @abstractmethod
    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]: ...

    @abstractmethod
    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor: ...

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        """Precompute what the module needs from the training data (default: nothing)."""

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        return None

    def fit(
        self,
        dataset: Dataset,
        valid: Dataset | None = None,
        seed: int = 0,
        *,
        options: FitOptions | None = None,
        run_dir: str | Path | None = None,
        resume: bool | None = None,
        callbacks: Iterable[Callable[[int, dict], None]] | None = None,
        init_from: str | Path | None = None,
    ) -> TorchRecommender:
        """Learn from ``dataset`` (``valid`` for early stopping) under ``options`` (see
        :class:`~fusionrec.training.FitOptions`). The ``run_dir``/``resume``/``callbacks``
        keywords of earlier releases still work: they are folded into ``options``.
        ``init_from``: a saved folder of the same model class to warm-start from (users and
        items matched by external id, new ones initialised as in a fresh fit; see
        :mod:`fusionrec.models.warm_start`). Returns self."""
        self._init_from = None if init_from is None else Path(init_from)
        changes: dict[str, Any] = {}
        if run_dir is not None:
            changes["run_dir"] = run_dir
        if resume is not None:
            changes["resume"] = resume
        if callbacks is not None:
            changes["callbacks"] = tuple(callbacks)
        opts = fit_options(self.default_options if options is None else options, **changes)
        super().fit(dataset, valid, seed, options=opts)
        return self

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        opts = self.fit_options_
        self.device_ = resolve_device(opts.device)
        gen = torch.Generator().manual_seed(seed)
        self._prepare(dataset, np.random.default_rng(seed))
        self.module_ = self.build_module()
        init_parameters(self.module_, gen, std=self._init_std())
        self.warm_start_ = None  # what init_from copied (a WarmStartReport), None = fresh fit
        if getattr(self, "_init_from", None) is not None:
            self.warm_start_ = self._warm_start(self._init_from)
        self.module_.to(self.device_)
        # Dropout and other torch randomness draw from the global generator: fork it so the
        # caller's RNG state is untouched, and seed the fork for a reproducible fit.
        devices = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), cpu_threads(opts.cpu_threads, self.device_):
            torch.manual_seed(seed)
            trainer = Trainer(self.config, opts)
            self.history_: TrainHistory = trainer.fit(self, dataset, valid, seed)

    def _init_std(self) -> float:
        return 0.0

    def _warm_start_tables(self) -> dict[str, Any]:
        """Which module parameters are indexed by users/items (name -> ``IdTable``); the
        default guesses from shapes and names (``warm_start.id_tables``)."""
        from fusionrec.models.warm_start import id_tables

        return id_tables(self.module_.state_dict(), self.n_users, self.n_items)

    def _warm_start(self, path: Path) -> Any:
        """Copy a saved model's weights into the fresh module (ids mapped by external id)."""
        from fusionrec.models.base import load_model
        from fusionrec.models.warm_start import warm_start_module

        source = load_model(path, device="cpu")
        if type(source) is not type(self):
            raise ModelStateError(
                f"init_from={path}: holds a {source.name!r} model; warm start needs a saved {self.name!r}"
            )
        return warm_start_module(
            self.module_,
            source.module_,
            self._warm_start_tables(),
            {"user": source.users_, "item": source.items_},
            {"user": self.users_, "item": self.items_},
            source_name=path,
        )

    @torch.no_grad()
    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        self._require_fitted_module()
        self.module_.eval()
        with cpu_threads(self._options().cpu_threads, self.device_):
            return self._score_numpy(user_idx, item_idx)

    def _score_numpy(self, user_idx: np.ndarray, item_idx: np.ndarray | None) -> np.ndarray:
        u = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=self.device_)
        i = None if item_idx is None else torch.as_tensor(np.asarray(item_idx, dtype=np.int64), device=self.device_)
        return self.score_tensor(u, i).float().cpu().numpy()

    def _options(self) -> FitOptions:
        """The run options of the last fit or load (defaults before either)."""
        return getattr(self, "fit_options_", None) or self.default_options

    def _require_fitted_module(self) -> None:
        if getattr(self, "module_", None) is None:
            self._require_fitted()

    def _get_state(self) -> dict[str, np.ndarray]:
        state = {f"module.{k}": v.detach().float().cpu().numpy() if v.is_floating_point() else v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}
        for k, v in self._extra_state().items():
            state[f"extra.{k}"] = v
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.device_ = resolve_device(self._options().device)
        self._load_extra_state({k[6:]: v for k, v in state.items() if k.startswith("extra.")})
        self.module_ = self.build_module()
        sd = {k[7:]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("module.")}
        self.module_.load_state_dict(sd)
        self.module_.to(self.device_).eval()
