"""The estimator interface every model implements.

A model's constructor stores a validated config only. ``fit(dataset, valid=None, seed=...)``
learns; ``score_indices`` is the one scoring primitive a model writes; ``score``,
``recommend``, ``similar_items``, ``save`` and ``load`` are written once here on top of it.
A saved model is a folder (config.json, ids, safetensors state) that loads without the
training data and without pickle.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import ValidationError

from fusionrec._fsutil import replace_dir
from fusionrec.config.base import ModelConfig
from fusionrec.config.vocabulary import RUN_KEYS, split_run_keys
from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap
from fusionrec.errors import ConfigError, ModelStateError
from fusionrec.ranking import mask_seen, topk
from fusionrec.training.options import FitOptions, fit_options

__all__ = ["Recommender", "ModelConfig", "Capabilities", "load_model", "FORMAT_VERSION"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Capabilities:
    """What a model needs from the Dataset and what it can do."""

    needs_text: bool = False
    needs_kg: bool = False
    needs_user_features: bool = False
    needs_item_features: bool = False
    needs_timestamps: bool = False
    needs_ratings: bool = False
    cold_start_items: bool = False
    cold_start_users: bool = False
    sequential: bool = False
    gpu: bool = False
    rating_prediction: bool = False

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


class Recommender(ABC):
    """Base class of all models. Subclasses set ``Config`` and implement ``_fit`` and ``score_indices``
    plus ``_get_state``/``_set_state`` for persistence."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Why the model cannot run with default parameters (e.g. "needs a teacher"); such models
    #: are left out of ``quickstart --models all``. None = runs with defaults.
    needs_configuration: ClassVar[str | None] = None

    def __init__(self, config: ModelConfig | dict | None = None, **params: Any) -> None:
        run: dict[str, Any] = {}
        try:
            if params:
                params = self.Config.normalise_params(params)
            if isinstance(config, dict):
                config = self.Config.normalise_params(config)
            if config is None or isinstance(config, dict):
                merged, run = split_run_keys({**(config or {}), **params}, self.Config.model_fields)
                config = self.Config(**merged)
            elif params:
                merged, run = split_run_keys(params, self.Config.model_fields)
                config = self.Config(**{**config.model_dump(), **merged})
        except ValidationError as e:
            raise ConfigError(f"invalid parameters for model {self.name!r}: {_pretty(e)}") from None
        if not isinstance(config, self.Config):
            raise ConfigError(f"model {self.name!r} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        #: Run options used when ``fit`` gets none (run keys given to the constructor, deprecated).
        self.default_options: FitOptions = FitOptions()
        if run:
            warnings.warn(
                f"model {self.name!r}: {', '.join(sorted(run))} describe the run, not the model; "
                "pass fit(..., options=FitOptions(...)) instead (kept as this instance's default, never saved)",
                DeprecationWarning,
                stacklevel=2,
            )
            self.default_options = fit_options(run)
        self.fitted_ = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # ------------------------------------------------------------------ fit
    def fit(
        self, dataset: Dataset, valid: Dataset | None = None, seed: int = 0, *, options: FitOptions | None = None
    ) -> Recommender:
        """Learn from ``dataset`` (``valid`` only for early stopping). Returns self.

        ``options`` (:class:`~fusionrec.training.FitOptions`) describe the run — device, CPU
        threads, progress, run folder, resume, callbacks — and are never saved; scoring after
        the fit uses the device chosen here. Default: ``self.default_options``."""
        self.fit_options_: FitOptions = self.default_options if options is None else fit_options(options)
        self.check_dataset(dataset)
        self.users_: IdMap = dataset.users
        self.items_: IdMap = dataset.items
        seen = dataset.matrix("csr")
        self.seen_: sp.csr_matrix = sp.csr_matrix((seen.data.copy(), seen.indices.copy(), seen.indptr.copy()), shape=seen.shape)
        self.item_pop_: np.ndarray = dataset.item_popularity().astype(np.float32)
        titles = dataset.item_titles()
        self.item_titles_: np.ndarray | None = None if titles is None else np.asarray(titles, dtype=str)
        self._fit(dataset, valid, seed)
        self.fitted_ = True
        return self

    def check_dataset(self, dataset: Dataset) -> None:
        """Raise a clear error when the dataset lacks a part this model needs."""
        c = self.capabilities
        missing = []
        if c.needs_text and not dataset.text_fields and "text" not in dataset.item_embeddings:
            missing.append("item text fields")
        if c.needs_kg and dataset.kg is None:
            missing.append("a knowledge graph (.kg + .link)")
        if c.needs_user_features and dataset.user_features is None:
            missing.append("user features")
        if c.needs_item_features and dataset.item_features is None and not dataset.item_embeddings:
            missing.append("item features")
        if c.needs_timestamps and dataset.timestamp is None:
            missing.append("timestamps")
        if c.needs_ratings and dataset.rating is None:
            missing.append("ratings")
        if missing:
            raise ConfigError(f"model {self.name!r} needs {', '.join(missing)}; dataset {dataset.name!r} has none")
        if dataset.n_interactions == 0:
            raise ConfigError(f"dataset {dataset.name!r} has no interactions to fit on")

    @abstractmethod
    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None: ...

    # --------------------------------------------------------------- scoring
    @abstractmethod
    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(user_idx), n_items or len(item_idx)) as float32; higher = better."""

    def _require_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise ModelStateError(f"model {self.name!r} is not fitted: call fit() or load() first")

    @property
    def n_users(self) -> int:
        return len(self.users_)

    @property
    def n_items(self) -> int:
        return len(self.items_)

    def score(self, users: Sequence[object] | np.ndarray, items: Sequence[object] | np.ndarray | None = None) -> np.ndarray:
        """Scores for external user ids (rows) and item ids (columns, all items by default)."""
        self._require_fitted()
        u = self.users_.to_idx(np.atleast_1d(np.asarray(users, dtype=object)))
        i = None if items is None else self.items_.to_idx(np.atleast_1d(np.asarray(items, dtype=object)))
        return self.score_indices(u, i)

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores for ad-hoc users given by item-index histories (cold/anonymous users).

        Models with ``capabilities.cold_start_users`` implement it."""
        raise NotImplementedError(f"model {self.name!r} cannot score ad-hoc histories")

    def recommend_indices(
        self,
        user_idx: np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        batch_size: int = 1024,
        extra_exclude: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user index, best first, batch-first."""
        self._require_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        user_idx = np.asarray(user_idx, dtype=np.int64)
        out_i, out_s = [], []
        for s in range(0, len(user_idx), batch_size):
            rows = user_idx[s : s + batch_size]
            sc = np.array(self.score_indices(rows), dtype=np.float32, copy=True)
            if exclude_seen:
                mask_seen(sc, rows, self.seen_, extra_exclude)
            if candidates is not None:
                keep = np.zeros(sc.shape[1], bool)
                keep[candidates] = True
                sc[:, ~keep] = -np.inf
            idx, val = topk(sc, k)
            out_i.append(idx)
            out_s.append(val)
        if not out_i:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return np.concatenate(out_i), np.concatenate(out_s)

    def recommend(
        self,
        users: Sequence[object] | np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[object] | None = None,
        unknown: Literal["popular", "raise"] = "popular",
        *,
        histories: Sequence[Sequence[object] | None] | None = None,
        item_filter: np.ndarray | None = None,
        diversity: float = 0.0,
    ) -> pd.DataFrame:
        """Top-k per user as a table ``user_id, item_id, rank, score, fallback``.

        The one recommend path (:func:`fusionrec.models.recommend.recommend_batch`, which the
        service calls too): training items are excluded (``exclude_seen``), ``candidates``
        (item ids) and ``item_filter`` (a boolean mask over items, e.g. from
        :func:`fusionrec.models.item_filters.genre_filter`) restrict the answer, ``histories``
        (item ids per user) add interactions outside the training data, ``diversity`` re-ranks
        by MMR. Users the model never saw get history scoring, content similarity or the most
        popular items (the last two ``fallback=True``) unless ``unknown="raise"``.
        """
        from fusionrec.models.recommend import recommend_batch

        self._require_fitted()
        # object array of str: numpy's fixed-width strings would cut a trailing NUL off an id
        users = np.asarray([str(u) for u in np.atleast_1d(np.asarray(users, dtype=object)).tolist()], dtype=object)
        if unknown == "raise":
            self.users_.to_idx(users, unknown="raise")
        cand = None if candidates is None else self.items_.to_idx(np.asarray(candidates, dtype=object))
        answers = recommend_batch(
            self,
            users,
            k,
            exclude_seen=exclude_seen,
            candidates=cand,
            allowed=item_filter,
            histories=histories,
            diversity=diversity,
        )
        rows = []
        for uid, ans in zip(users, answers, strict=True):
            rows.extend(_rows(uid, ans.items, ans.scores, self.items_, fallback=ans.fallback))
        df = pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "score", "fallback"])
        order = {u: n for n, u in enumerate(dict.fromkeys(users.tolist()))}
        df["_o"] = df["user_id"].map(order)
        return df.sort_values(["_o", "rank"], kind="stable").drop(columns="_o").reset_index(drop=True)

    def item_vectors(self) -> np.ndarray | None:
        """Item representation used by ``similar_items`` (None: use co-occurrence)."""
        return None

    def similar_items(self, items: Sequence[object] | np.ndarray, k: int = 10) -> pd.DataFrame:
        """The k most similar items (cosine of item vectors, or of training co-occurrence)."""
        self._require_fitted()
        items = np.asarray([str(i) for i in np.atleast_1d(np.asarray(items, dtype=object)).tolist()], dtype=object)
        iidx = self.items_.to_idx(items)
        vec = self.item_vectors()
        if vec is not None:
            v = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
            sims = v[iidx] @ v.T
        else:
            x = self.seen_.T.tocsr().astype(np.float32)
            norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
            sims = np.asarray((x[iidx] @ x.T).todense()) / np.maximum(norms[iidx, None] * norms[None, :], 1e-12)
        sims = sims.astype(np.float32)
        sims[np.arange(len(iidx)), iidx] = -np.inf
        idx, val = topk(sims, k)
        rows = []
        for src, its, scs in zip(items, idx, val, strict=True):
            for r, (i, s) in enumerate(zip(its, scs, strict=True), 1):
                if np.isfinite(s):
                    rows.append((src, self.items_.ids[i], r, float(s)))
        return pd.DataFrame(rows, columns=["item_id", "similar_item_id", "rank", "score"])

    # ----------------------------------------------------------- persistence
    @abstractmethod
    def _get_state(self) -> dict[str, np.ndarray]:
        """Model arrays to save (numeric numpy arrays only)."""

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from ``_get_state``'s arrays; ``users_``/``items_`` are already set."""

    def _save_files(self, folder: Path) -> None:
        """Write extra files into the model folder (e.g. nested member models). Default: none."""
        return None

    def _load_files(self, folder: Path) -> None:
        """Read what ``_save_files`` wrote; called before ``_set_state``. Default: nothing."""
        return None

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to folder ``path`` atomically (temp folder, then rename)."""
        from safetensors.numpy import save_file

        from fusionrec import __version__

        self._require_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            meta = {
                "format_version": FORMAT_VERSION,
                "model": self.name,
                "params": self.config.model_dump(mode="json"),
                "fusionrec_version": __version__,
                "n_users": self.n_users,
                "n_items": self.n_items,
            }
            (tmp / "config.json").write_text(json.dumps(meta, indent=2))
            np.save(tmp / "users.npy", self.users_.ids, allow_pickle=False)
            np.save(tmp / "items.npy", self.items_.ids, allow_pickle=False)
            if self.item_titles_ is not None:
                np.save(tmp / "item_titles.npy", self.item_titles_, allow_pickle=False)
            state = {
                "_seen_indptr": self.seen_.indptr.astype(np.int64),
                "_seen_indices": self.seen_.indices.astype(np.int64),
                "_item_pop": self.item_pop_,
            }
            for k, v in self._get_state().items():
                if k.startswith("_"):
                    raise ValueError(f"state key {k!r} is reserved")
                state[k] = np.ascontiguousarray(v)
            save_file(state, str(tmp / "state.safetensors"))
            self._save_files(tmp)
            replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", *, cpu_threads: int | None = 1) -> Recommender:
        """Load a saved model folder; ``Recommender.load`` dispatches on the saved model name.
        ``device``/``cpu_threads`` as in :func:`load_model`."""
        model = load_model(path, device, cpu_threads=cpu_threads)
        if cls is not Recommender and not isinstance(model, cls):
            raise ModelStateError(f"{path} holds a {model.name!r} model, not {cls.name!r}")
        return model


def load_model(path: str | Path, device: str = "auto", *, cpu_threads: int | None = 1) -> Recommender:
    """Load any saved model folder (no pickle; the training data is not needed).

    ``device`` ('auto' = CUDA when present, 'cpu', 'cuda', 'cuda:N') is where a torch model
    scores, chosen here and not by the folder, so a model trained on a GPU loads on a CPU
    server; ``cpu_threads`` as in :class:`~fusionrec.training.FitOptions`. Folders saved before
    run options left the config still load: their ``device``/``progress``/``cpu_threads`` keys
    are dropped with a warning, and deprecated parameter names are read as today's names."""
    options = FitOptions(device=device, cpu_threads=cpu_threads)
    from safetensors.numpy import load_file

    from fusionrec.models.folder import check_model_folder, loading
    from fusionrec.models.registry import get_model

    path = Path(path)
    cfg_path = path / "config.json"
    check_model_folder(path)  # every malformed file -> ModelStateError naming it (models/folder.py)
    try:
        meta = json.loads(cfg_path.read_text())
        name, params = meta["model"], meta["params"]
    except (json.JSONDecodeError, KeyError) as e:
        raise ModelStateError(f"{cfg_path}: invalid model config ({e})") from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelStateError(f"{path} was saved by a newer fusionrec (format {meta['format_version']})")
    cls = get_model(name)
    if not isinstance(params, dict):
        raise ModelStateError(f"{cfg_path}: 'params' must be an object, got {type(params).__name__}")
    stale = [k for k in RUN_KEYS if k in params and k not in cls.Config.model_fields]
    if stale:
        warnings.warn(
            f"{cfg_path}: ignoring run options saved by an older fusionrec: {', '.join(stale)}",
            stacklevel=2,
        )
        params = {k: v for k, v in params.items() if k not in stale}
    model = cls(params)
    model.fit_options_ = options
    model.users_ = IdMap(np.load(path / "users.npy", allow_pickle=False), name="user")
    model.items_ = IdMap(np.load(path / "items.npy", allow_pickle=False), name="item")
    tp = path / "item_titles.npy"
    model.item_titles_ = np.load(tp, allow_pickle=False) if tp.exists() else None
    state = load_file(str(path / "state.safetensors"))
    indptr, indices = state.pop("_seen_indptr"), state.pop("_seen_indices")
    model.seen_ = sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(len(model.users_), len(model.items_))
    )
    model.item_pop_ = state.pop("_item_pop")
    with loading(path):
        model._load_files(path)
        model._set_state(state)
    model.fitted_ = True
    return model


def _rows(uid: str, items: np.ndarray, scores: np.ndarray, idmap: IdMap, fallback: bool) -> list[tuple]:
    out = []
    rank = 0
    for i, s in zip(items, scores, strict=True):
        if not np.isfinite(s):
            continue
        rank += 1
        out.append((uid, idmap.ids[i], rank, float(s), fallback))
    return out


def _pretty(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'config'}: {err['msg']}" for err in e.errors())
