"""Score fusion of several models into one Recommender.

Methods:
- ``weighted``: per-user normalised scores (z-score, min-max or rank) summed with weights;
  weights given, or learned on the validation split — never on test. By default
  (``selection="forward"``) members are *chosen* too: the ensemble starts from the member best
  on validation and adds, one at a time, the member (and mixing weight) that raises the
  validation metric most, only while the relative gain is at least ``min_gain``; a member
  never chosen gets weight 0 and is not scored. A small validation gain is mostly noise on a
  dataset the size of ml-100k (EASE + ItemKNN: +0.6% on valid, -2% on test), so the default
  threshold (2%) keeps the best member alone rather than fuse on noise. ``selection="all"``
  searches a grid over the simplex of every member's weight instead.
- ``rrf``: reciprocal-rank fusion, Σ_m w_m / (rrf_k + rank_m(i)), ranks after masking the
  training items, so ranks are positions in each member's recommendable list.
- ``stacked``: a logistic-regression stacker over the members' normalised scores, fitted on
  validation positives vs. sampled non-interacted items.

The ensemble saves its members as sub-folders and loads like any other model.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError, ModelStateError
from fusionrec.models.base import Capabilities, ModelConfig, Recommender, load_model
from fusionrec.models.folder import member_folder, nested_load
from fusionrec.models.registry import get_model, register
from fusionrec.ranking import mask_seen

__all__ = ["Ensemble", "EnsembleConfig", "MemberSpec", "normalise_scores", "rrf_scores"]


class MemberSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str
    """Registered model name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The member's hyper-parameters."""


class EnsembleConfig(ModelConfig):
    _aliases: ClassVar[dict[str, str]] = {"n_negatives": "num_negatives"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    members: tuple[MemberSpec, ...] = (MemberSpec(name="ease"), MemberSpec(name="itemknn"))
    """Models fused (each fitted on the same training data). With the default forward selection
    the ensemble never falls below its best member on validation; on ml-100k (RS 8:1:1) the
    members that add to EASE/lm_ease on test are a graph model: ``ease,lightgcn`` or
    ``lm_ease,lightgcn`` (ItemKNN and BPR are not chosen)."""
    method: Literal["weighted", "rrf", "stacked"] = "weighted"
    """Fusion method."""
    normalisation: Literal["zscore", "minmax", "rank", "none"] = "zscore"
    """Per-user score normalisation before a weighted sum / stacking."""
    weights: tuple[float, ...] | None = None
    """Fixed member weights; None = learn on the validation split (equal weights without one)."""
    rrf_k: float = Field(60.0, gt=0)
    """RRF constant k."""
    selection: Literal["forward", "all"] = "forward"
    """How weights are learned on validation: greedy forward selection of members (weight 0 for
    the rest), or a grid over the simplex of all members' weights."""
    min_gain: float = Field(0.02, ge=0)
    """``forward``: smallest relative validation gain (0.02 = 2%) for which a member joins."""
    weight_grid: int = Field(10, ge=2, le=50)
    """Grid resolution over the weight simplex when learning weights (steps per unit)."""
    tune_metric: str = "ndcg@10"
    """Validation metric maximised when learning weights."""
    num_negatives: int = Field(20, ge=1)
    """Negatives per validation positive for the stacked learner (was ``n_negatives``)."""


def normalise_scores(s: np.ndarray, how: str) -> np.ndarray:
    """Row-wise normalisation of a score matrix; -inf entries stay -inf and are ignored."""
    s = np.asarray(s, dtype=np.float64)
    fin = np.isfinite(s)
    if how == "none":
        return s
    if how == "rank":
        order = np.argsort(
            np.argsort(np.where(fin, s, -np.inf), axis=1, kind="stable"), axis=1, kind="stable"
        )
        out = (order + 1) / s.shape[1]
        return np.where(fin, out, -np.inf)
    x = np.where(fin, s, np.nan)
    with np.errstate(all="ignore"):
        if how == "zscore":
            mu = np.nanmean(x, 1, keepdims=True)
            sd = np.nanstd(x, 1, keepdims=True)
            out = (x - mu) / np.where(sd > 0, sd, 1.0)
        else:
            lo = np.nanmin(x, 1, keepdims=True)
            hi = np.nanmax(x, 1, keepdims=True)
            out = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.where(fin, np.nan_to_num(out), -np.inf)


def rrf_scores(score_list: list[np.ndarray], weights: np.ndarray, k: float) -> np.ndarray:
    """Σ_m w_m / (k + rank_m) with rank 1 = best per row; -inf scores get no contribution."""
    total = np.zeros_like(score_list[0], dtype=np.float64)
    for s, w in zip(score_list, weights, strict=True):
        ranks = np.empty_like(s, dtype=np.float64)
        order = np.argsort(-s, axis=1, kind="stable")
        np.put_along_axis(
            ranks,
            order,
            np.arange(1, s.shape[1] + 1, dtype=np.float64)[None, :].repeat(len(s), 0),
            axis=1,
        )
        total += np.where(np.isfinite(s), w / (k + ranks), 0.0)
    return total


@register("ensemble")
class Ensemble(Recommender):
    """Fusion of several models' scores (weighted, reciprocal-rank or stacked)."""

    Config = EnsembleConfig
    capabilities = Capabilities()

    def __init__(self, config: EnsembleConfig | dict | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        if not self.config.members:
            raise ConfigError("an ensemble needs at least one member")
        if self.config.weights is not None and len(self.config.weights) != len(self.config.members):
            raise ConfigError(
                f"{len(self.config.weights)} weights for {len(self.config.members)} members"
            )
        self.members_: list[Recommender] = []

    @classmethod
    def from_models(cls, models: list[Recommender], **params: Any) -> Ensemble:
        """An ensemble over already-fitted models (call ``fit_weights`` next, or give ``weights``)."""
        specs = tuple(
            MemberSpec(name=m.name, params=m.config.model_dump(mode="json")) for m in models
        )
        ens = cls(members=specs, **params)
        ens.members_ = list(models)
        m0 = models[0]
        ens.users_, ens.items_, ens.seen_, ens.item_pop_ = (
            m0.users_,
            m0.items_,
            m0.seen_,
            m0.item_pop_,
        )
        ens.item_titles_ = m0.item_titles_
        ens.weights_ = np.asarray(ens.config.weights or [1.0] * len(models), dtype=np.float64)
        ens.bias_ = 0.0
        ens.fitted_ = True
        return ens

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        self.members_ = [
            get_model(m.name)(**m.params).fit(dataset, valid, seed=seed, options=self.fit_options_.nested())
            for m in self.config.members
        ]
        self.weights_ = np.asarray(
            self.config.weights or [1.0] * len(self.members_), dtype=np.float64
        )
        self.bias_ = 0.0
        self.fitted_ = True
        if self.config.weights is None and valid is not None and valid.n_interactions:
            self.fit_weights(valid, dataset, seed)

    # ----------------------------------------------------------- weights
    def fit_weights(self, valid: Dataset, train: Dataset | None = None, seed: int = 0) -> Ensemble:
        """Learn member weights on ``valid`` (masking ``train``); test data is never used."""
        from fusionrec.evaluation.evaluator import Evaluator, parse_metric

        c = self.config
        if c.method == "stacked":
            self._fit_stacker(valid, seed)
            return self
        metric, k = parse_metric(c.tune_metric)
        ev = Evaluator(metrics=(metric,), ks=(k,))
        exclude = (train,) if train is not None else (self.seen_,)
        cache = _MemberScoreCache(self, valid, exclude)
        if c.selection == "forward":
            self.weights_, self.valid_metric_, self.selection_log_ = _forward_selection(
                cache, ev, f"{metric}@{k}", len(self.members_), c.weight_grid, c.min_gain
            )
            return self
        best, best_w = -1.0, self.weights_
        for w in _simplex(len(self.members_), c.weight_grid):
            val = cache.evaluate(ev, np.asarray(w), f"{metric}@{k}")
            if val > best + 1e-12:
                best, best_w = val, np.asarray(w, dtype=np.float64)
        self.weights_ = best_w
        self.valid_metric_ = best
        return self

    def _fit_stacker(self, valid: Dataset, seed: int) -> None:
        from scipy.optimize import minimize

        rng = np.random.default_rng(seed)
        users = np.unique(valid.user_idx)
        vm = valid.matrix("csr")
        feats, labels = [], []
        for s in range(0, len(users), 512):
            rows = users[s : s + 512]
            norm = [
                normalise_scores(self._member_scores(m, rows), self.config.normalisation)
                for m in self.members_
            ]
            sub = vm[rows]
            for b, u in enumerate(rows):
                pos = sub.indices[sub.indptr[b] : sub.indptr[b + 1]]
                neg = rng.integers(0, self.n_items, size=len(pos) * self.config.num_negatives)
                seen = set(
                    self.seen_.indices[self.seen_.indptr[u] : self.seen_.indptr[u + 1]]
                ) | set(pos.tolist())
                neg = np.array([i for i in neg if i not in seen], dtype=np.int64)
                its = np.concatenate([pos, neg])
                feats.append(np.stack([n[b, its] for n in norm], 1))
                labels.append(np.r_[np.ones(len(pos)), np.zeros(len(neg))])
        x = np.concatenate(feats)
        y = np.concatenate(labels)
        x = np.where(np.isfinite(x), x, -10.0)
        wpos = 0.5 / max(y.mean(), 1e-9)
        wneg = 0.5 / max(1 - y.mean(), 1e-9)
        sw = np.where(y == 1, wpos, wneg)

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            z = x @ theta[:-1] + theta[-1]
            p = 1 / (1 + np.exp(-z))
            ll = (
                -np.mean(sw * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
                + 1e-3 * theta[:-1] @ theta[:-1]
            )
            g = x.T @ (sw * (p - y)) / len(y) + 2e-3 * theta[:-1]
            return ll, np.r_[g, np.mean(sw * (p - y))]

        res = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
        self.weights_ = res.x[:-1]
        self.bias_ = float(res.x[-1])

    # ----------------------------------------------------------- scoring
    def _member_scores(
        self, m: Recommender, rows: np.ndarray, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        s = np.array(m.score_indices(rows), dtype=np.float64)
        s[~np.isfinite(s)] = -np.inf
        mask_seen(s, rows, self.seen_)
        return s if item_idx is None else s[:, item_idx]

    def _combine(self, score_list: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        c = self.config
        if c.method == "rrf":
            return rrf_scores(score_list, weights, c.rrf_k)
        norm = [normalise_scores(s, c.normalisation) for s in score_list]
        total = np.zeros_like(norm[0])
        for n, w in zip(norm, weights, strict=True):
            total += w * np.where(np.isfinite(n), n, 0.0)
        return total + self.bias_

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        self._require_fitted()
        rows = np.asarray(user_idx, dtype=np.int64)
        use = [j for j, w in enumerate(self.weights_) if w != 0] or list(range(len(self.members_)))
        out = self._combine(
            [self._member_scores(self.members_[j], rows) for j in use], self.weights_[use]
        )
        out = out if item_idx is None else out[:, np.asarray(item_idx)]
        return out.astype(np.float32)

    # ------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_.astype(np.float64), "bias": np.asarray([self.bias_])}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.weights_ = state["weights"]
        self.bias_ = float(state["bias"][0])

    def _save_files(self, folder: Path) -> None:
        for i, m in enumerate(self.members_):
            m.save(folder / "members" / f"{i}-{m.name}")

    def _load_files(self, folder: Path) -> None:
        # member folders are confined to this folder (no '..', absolute paths or symlinks)
        # and a folder already being loaded is refused (cycles), see models/folder.py
        members = []
        with nested_load(folder):
            for i, spec in enumerate(self.config.members):
                path = member_folder(folder, "members", f"{i}-{spec.name}")
                m = load_model(path, self.fit_options_.device, cpu_threads=self.fit_options_.cpu_threads)
                if type(m) is not get_model(spec.name):
                    raise ModelStateError(f"{path} holds a {m.name!r} model, the config names {spec.name!r}")
                members.append(m)
        self.members_ = members


class _MemberScoreCache:
    """Member scores on the validation users, computed once for the weight search."""

    def __init__(self, ens: Ensemble, valid: Dataset, exclude) -> None:
        self.ens, self.valid, self.exclude = ens, valid, exclude
        self.users = np.flatnonzero(np.diff(valid.matrix("csr").indptr) > 0)
        self.scores = [ens._member_scores(m, self.users) for m in ens.members_]

    def evaluate(self, ev, w: np.ndarray, key: str) -> float:
        fused = self.ens._combine(self.scores, w)
        full = np.full((self.valid.n_users, fused.shape[1]), -np.inf, dtype=np.float32)
        full[self.users] = fused

        class _S:
            @staticmethod
            def score_indices(rows, item_idx=None):
                return full[rows]

        return ev.evaluate(_S, self.valid, exclude=self.exclude).metrics[key]


def _forward_selection(
    cache: _MemberScoreCache, ev: Any, key: str, n: int, steps: int, min_gain: float
) -> tuple[np.ndarray, float, list[tuple[int, float, float]]]:
    """Greedy forward selection on validation: (weights, metric, [(member, mix, metric)])."""
    singles = [cache.evaluate(ev, np.eye(n)[j], key) for j in range(n)]
    first = int(np.argmax(singles))
    w = np.eye(n)[first]
    best = singles[first]
    log = [(first, 1.0, best)]
    mixes = [a / steps for a in range(1, steps)]
    while True:
        cand = None
        for j in np.flatnonzero(w == 0):
            for a in mixes:
                trial = (1 - a) * w + a * np.eye(n)[j]
                val = cache.evaluate(ev, trial, key)
                if cand is None or val > cand[2] + 1e-12:
                    cand = (int(j), a, val, trial)
        if cand is None or cand[2] < best * (1 + min_gain):
            return w, best, log
        w, best = cand[3], cand[2]
        log.append((cand[0], cand[1], best))


def _simplex(n: int, steps: int):
    """Weight vectors on a grid over the simplex (n small) or a coarse set for many members."""
    if n == 1:
        yield (1.0,)
        return
    if n > 4:
        yield tuple([1.0 / n] * n)
        for i in range(n):
            w = [0.5 / (n - 1)] * n
            w[i] = 0.5
            yield tuple(w)
        return
    for combo in itertools.product(range(steps + 1), repeat=n - 1):
        if sum(combo) <= steps:
            yield tuple(c / steps for c in combo) + ((steps - sum(combo)) / steps,)
