"""The model under test: its class, parameters and data, fitted once and shared by the checks.

A ``Subject`` is cheap to build (nothing is fitted or encoded until a check asks), so that
pytest can collect one test per (model, check) without doing any work at collection time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities, Recommender

__all__ = ["Subject", "Planted", "fingerprint", "close", "expect", "saved_folder_problems"]

_ALLOWED_FILES = ("config.json", "state.safetensors")


@dataclass(frozen=True)
class Planted:
    """The planted taste groups of a toy dataset: 0/1 per user index and per item index."""

    user_group: np.ndarray
    item_group: np.ndarray


class _FitFailed(AssertionError):
    """The shared fit raised; every check that needs the fitted model reports it."""


class Subject:
    """One model configuration on one dataset; fits lazily, once, on first use."""

    def __init__(
        self,
        cls: type[Recommender],
        params: dict[str, Any],
        dataset: Dataset | Callable[[], Dataset],
        *,
        seed: int = 0,
        k: int = 5,
        planted: bool = False,
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.cls = cls
        self.params = dict(params)
        self._dataset = dataset
        self.seed = seed
        self.k = k
        self.planted_data = planted
        #: check name -> parameters replacing ``params`` for that check (e.g. a rating target)
        self.overrides = dict(overrides or {})
        self._fit: tuple[Recommender, object, tuple] | None = None
        self._fit_error: BaseException | None = None
        self._full: np.ndarray | None = None

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return str(getattr(self.cls, "name", self.cls.__name__))

    @property
    def caps(self) -> Capabilities:
        # an instance may declare capabilities that follow its config (mm_mf: cold items only
        # with modalities); building it only validates and stores the config
        return self.cls(**self.params).capabilities

    @property
    def dataset(self) -> Dataset:
        if callable(self._dataset) and not isinstance(self._dataset, Dataset):
            self._dataset = self._dataset()
        return self._dataset

    def planted(self) -> Planted | None:
        """The planted groups when the data is the toy data (users ``u<n>``, items ``i<n>``)."""
        if not self.planted_data:
            return None
        ds = self.dataset
        return Planted(toy_groups(ds.users.ids), toy_groups(ds.items.ids))

    # ------------------------------------------------------------------ models
    def params_for(self, check: str) -> dict[str, Any]:
        return {**self.params, **self.overrides.get(check, {})}

    def new(self, params: dict[str, Any] | None = None) -> Recommender:
        return self.cls(**(self.params if params is None else params))

    def fit_once(self) -> tuple[Recommender, object, tuple]:
        """(model, what ``fit`` returned, dataset fingerprint taken before the fit)."""
        if self._fit is None:
            if self._fit_error is not None:
                raise _FitFailed(f"the shared fit failed: {self._fit_error}") from self._fit_error
            ds = self.dataset
            fp = fingerprint(ds)
            model = self.new()
            try:
                out = model.fit(ds, seed=self.seed)
            except Exception as e:
                self._fit_error = e
                raise
            self._fit = (model, out, fp)
        return self._fit

    @property
    def model(self) -> Recommender:
        return self.fit_once()[0]

    @property
    def full(self) -> np.ndarray:
        """Scores of every training user for every item, from the shared fitted model."""
        if self._full is None:
            self._full = np.asarray(self.model.score(self.dataset.users.ids))
        return self._full

    def subset(self) -> np.ndarray:
        """A fixed third of the item indices (sorted)."""
        n = self.dataset.n_items
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(n, size=max(1, n // 3), replace=False))


def toy_groups(ids: np.ndarray) -> np.ndarray:
    """0/1 per id of the toy data: ``u<n>``/``i<n>`` is group 1 when n >= half of the ids."""
    nums = np.array([int(str(x)[1:]) for x in ids])
    return (nums >= len(ids) // 2).astype(np.int64)


def fingerprint(ds: Dataset) -> tuple:
    """A hash of everything in a Dataset that a model could mutate."""
    parts: list[Any] = [ds.user_idx.tobytes(), ds.item_idx.tobytes(), ds.n_users, ds.n_items]
    for a in (ds.rating, ds.timestamp):
        parts.append(b"" if a is None else a.tobytes())
    for t in (ds.user_features, ds.item_features):
        parts.append(
            b""
            if t is None
            else pd.util.hash_pandas_object(t.astype(str), index=True).values.tobytes()
        )
    for k in sorted(ds.item_embeddings):
        parts.append(np.asarray(ds.item_embeddings[k]).tobytes())
    return tuple(hash(p) if isinstance(p, bytes) else p for p in parts)


def close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise AssertionError(message)


def saved_folder_problems(path: Path, rel: str = "") -> list[str]:
    """What is wrong with a saved model folder: files other than config.json, *.npy and
    state.safetensors, pickles, ``.npy`` needing pickle. A sub-folder is allowed when it is a
    saved model folder itself (nested members, e.g. an ensemble's ``members/0-ease/``) or holds
    only such folders (``members/``); both are checked by the same rules, recursively."""
    problems: list[str] = []
    for p in sorted(path.iterdir()):
        name = f"{rel}{p.name}"
        if p.is_symlink():
            problems.append(f"{name} is a symbolic link")
        elif p.is_dir():
            if (p / "config.json").is_file():
                problems += saved_folder_problems(p, f"{name}/")
            else:
                subs = sorted(p.iterdir())
                not_models = [
                    f"{name}/{q.name}"
                    for q in subs
                    if not (q.is_dir() and not q.is_symlink() and (q / "config.json").is_file())
                ]
                if not subs or not_models:
                    problems.append(
                        f"sub-folder {name}/ is neither a saved model nor a folder of saved models"
                        + (f" ({', '.join(not_models[:3])})" if not_models else " (empty)")
                    )
                else:
                    for q in subs:
                        problems += saved_folder_problems(q, f"{name}/{q.name}/")
        elif p.name not in _ALLOWED_FILES and not p.name.endswith(".npy"):
            problems.append(
                f"unexpected file {name} (allowed: config.json, *.npy, state.safetensors)"
            )
        else:
            if p.read_bytes()[:1] == b"\x80":
                problems.append(f"{name} looks like a pickle")
            elif p.name.endswith(".npy"):
                try:
                    np.load(p, allow_pickle=False)
                except ValueError as e:
                    problems.append(f"{name} needs pickle to load ({e})")
    return problems
