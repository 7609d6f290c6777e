"""Bandit environments on the project's own data, and the loop that runs policies in them.

:class:`BanditEnvironment` holds, per round source (a user, or a logged time step), the
candidate items best first, their contexts and their expected rewards. Two builders:

- :func:`semi_synthetic` (MovieLens-100k or any rated Dataset): a fitted embedding model
  (BPR by default) trained on a split's training part proposes each user's top-N unseen
  items; the reward of recommending item i to user u is a Bernoulli "the user likes it"
  (rating >= ``like_threshold``) whose probability comes from a logistic regression on the
  contexts, calibrated on the held-out ratings (fit on the validation part, checked on the
  test part: :attr:`BanditEnvironment.info` carries its AUC and calibration). The linear
  policies see those same contexts, so the reward is realisable up to the logistic link.
- :func:`fusionrec.bandits.replay.time_replay`: time-ordered rounds on the timestamped
  interactions after a global time cut, rewards the observed ratings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.bandits.base import BanditInputError, Policy, as_generator
from fusionrec.bandits.contexts import ContextBuilder
from fusionrec.data.dataset import Dataset
from fusionrec.data.splits import split
from fusionrec.errors import ConfigError
from fusionrec.models.base import Recommender

__all__ = [
    "BanditEnvironment",
    "SimulationResult",
    "simulate",
    "semi_synthetic",
    "fit_logistic",
    "rating_extras",
    "bpr_params",
]


def bpr_params(dim: int = 16, epochs: int = 30) -> dict[str, Any]:
    """BPR parameters of the environments' default model, in the config's own vocabulary
    (``embedding_dim``, formerly ``embedding_size``)."""
    from fusionrec.models.classic.bpr import BPR

    key = "embedding_dim" if "embedding_dim" in BPR.Config.model_fields else "embedding_size"
    return {key: dim, "epochs": epochs}


@dataclass(frozen=True)
class BanditEnvironment:
    """Rounds to play: ``candidates (S, m)`` arm ids, ``contexts (S, m, d)``, ``probs (S, m)``.

    ``order=None``: each round draws a source row uniformly (a user arriving); otherwise the
    rounds replay ``order`` (row per round, e.g. time order) and stop at its end."""

    candidates: np.ndarray
    contexts: np.ndarray
    probs: np.ndarray
    n_arms: int
    order: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        S, m = self.candidates.shape
        if self.contexts.shape[:2] != (S, m) or self.probs.shape != (S, m):
            raise BanditInputError(
                f"environment arrays disagree: candidates {self.candidates.shape}, contexts {self.contexts.shape}, probs {self.probs.shape}"
            )
        if np.any((self.probs < 0) | (self.probs > 1)):
            raise BanditInputError("environment reward probabilities must lie in [0, 1]")

    @property
    def dim(self) -> int:
        return int(self.contexts.shape[2])

    @property
    def n_candidates(self) -> int:
        return int(self.candidates.shape[1])

    def rows(self, rounds: int, rng: np.random.Generator) -> np.ndarray:
        if self.order is None:
            return rng.integers(0, self.candidates.shape[0], size=rounds)
        return self.order[:rounds]

    def oracle_value(self) -> float:
        """Expected reward per round of always choosing the best candidate (uniform sources)."""
        rows = np.arange(len(self.probs)) if self.order is None else self.order
        return float(self.probs[rows].max(axis=1).mean())


@dataclass(frozen=True)
class SimulationResult:
    """Per-round outcomes of one policy in one seed."""

    policy: str
    seed: int
    reward: np.ndarray
    """Realised reward of the chosen slate (sum over its slots)."""
    expected: np.ndarray
    """Expected reward of the chosen slate."""
    oracle: np.ndarray
    """Expected reward of the best slate of that round."""
    propensity: np.ndarray
    """The first slot's propensity."""

    @property
    def regret(self) -> np.ndarray:
        return self.oracle - self.expected


def simulate(
    env: BanditEnvironment,
    policy: Policy,
    rounds: int,
    seed: int | np.random.Generator,
    k: int = 1,
    batch_update: int = 1,
) -> SimulationResult:
    """Play ``rounds`` rounds: the policy picks ``k`` candidates, each slot's reward is drawn
    Bernoulli(p), the policy learns from every slot (in batches of ``batch_update`` rounds)."""
    if rounds < 1:
        raise BanditInputError(f"rounds must be >= 1, got {rounds}")
    if policy.contextual and policy.dim != env.dim:
        raise BanditInputError(f"context has width {env.dim}, policy {policy.name!r} expects {policy.dim}")
    rng = as_generator(seed)
    rows = env.rows(rounds, rng)
    n = len(rows)
    reward, expected, oracle, prop = (np.zeros(n) for _ in range(4))
    best_k = np.sort(env.probs, axis=1)[:, ::-1][:, :k].sum(axis=1)
    pend_a, pend_x, pend_r = [], [], []
    for t, s in enumerate(rows.tolist()):
        arms, X, p = env.candidates[s], env.contexts[s], env.probs[s]
        d = policy.select(arms, X if policy.contextual else None, k=k, rng=rng)
        pp = p[d.positions]
        r = (rng.random(len(pp)) < pp).astype(np.float64)
        reward[t], expected[t], oracle[t], prop[t] = r.sum(), pp.sum(), best_k[s], d.propensities[0]
        pend_a.append(d.arms)
        pend_x.append(X[d.positions])
        pend_r.append(r)
        if len(pend_a) >= batch_update or t == n - 1:
            policy.update(np.concatenate(pend_a), np.concatenate(pend_r), np.concatenate(pend_x) if policy.contextual else None)
            pend_a, pend_x, pend_r = [], [], []
    return SimulationResult(policy.name, int(seed) if isinstance(seed, int | np.integer) else -1, reward, expected, oracle, prop)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """L2-penalised logistic regression by Newton's method (small, dense problems; scipy/numpy
    only so the simulator needs no scikit-learn). Returns the weight vector."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        z = np.clip(X @ w, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        g = X.T @ (p - y) / len(y) + l2 * w
        H = (X * (p * (1 - p))[:, None]).T @ X / len(y) + l2 * np.eye(X.shape[1])
        step = np.linalg.solve(H, g)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    pos = y.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / max(n1 * n0, 1))


def rating_extras(train: Dataset, shrink: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-item and per-user mean training rating, shrunk to the global mean (``shrink``
    pseudo-ratings), as (n_items, 1) and (n_users, 1) columns."""
    if train.rating is None:
        raise ConfigError(f"dataset {train.name!r} has no ratings to calibrate rewards on")
    mu = float(train.rating.mean())
    def shrunk(idx: np.ndarray, n: int) -> np.ndarray:
        s = np.bincount(idx, weights=train.rating, minlength=n)
        c = np.bincount(idx, minlength=n)
        return ((s + shrink * mu) / (c + shrink))[:, None]
    return shrunk(train.item_idx, train.n_items), shrunk(train.user_idx, train.n_users)


def semi_synthetic(
    dataset: Dataset,
    model: Recommender | None = None,
    n_candidates: int = 20,
    like_threshold: float = 4.0,
    seed: int = 0,
    model_name: str = "bpr",
    model_params: dict[str, Any] | None = None,
) -> BanditEnvironment:
    """A semi-synthetic environment from a fitted model on a rated Dataset (see module doc).

    ``model``: an embedding model already fitted on the training part of
    ``split(dataset, "rs", seed=seed)``; None fits ``model_name`` with ``model_params`` on it."""
    if dataset.rating is None:
        raise ConfigError(f"dataset {dataset.name!r} has no ratings: the simulator calibrates rewards on them")
    parts = split(dataset, "rs", (0.8, 0.1, 0.1), seed=seed)
    if model is None:
        from fusionrec.models.registry import get_model

        params = bpr_params() if model_name == "bpr" and model_params is None else (model_params or {})
        model = get_model(model_name)(**params).fit(parts.train, seed=seed)
    item_mean, user_mean = rating_extras(parts.train)
    base = ContextBuilder.from_model(model, item_extra=item_mean, user_extra=user_mean)
    cand, _ = model.recommend_indices(np.arange(dataset.n_users), k=n_candidates, exclude_seen=True)
    users = np.repeat(np.arange(dataset.n_users), n_candidates)
    builder = base.standardized(users, cand.reshape(-1))
    fit_part, check_part = parts.valid, parts.test
    w = fit_logistic(builder.pairs(fit_part.user_idx, fit_part.item_idx), fit_part.rating >= like_threshold)
    Xc = builder.pairs(check_part.user_idx, check_part.item_idx)
    yc = check_part.rating >= like_threshold
    pc = _sigmoid(Xc @ w)
    contexts = builder.pairs(users, cand.reshape(-1)).reshape(dataset.n_users, n_candidates, -1)
    probs = _sigmoid(contexts @ w)
    info = {
        "dataset": dataset.name,
        "model": model.name,
        "n_candidates": n_candidates,
        "dim": builder.dim,
        "like_threshold": like_threshold,
        "calibration_auc_test": _auc(pc, yc),
        "calibration_mean_pred_test": float(pc.mean()),
        "calibration_mean_obs_test": float(yc.mean()),
        "mean_candidate_prob": float(probs.mean()),
        "greedy_value": float(probs[:, 0].mean()),
        "oracle_value": float(probs.max(axis=1).mean()),
    }
    return BanditEnvironment(cand.astype(np.int64), contexts, probs, n_arms=dataset.n_items, info=info)
