"""Off-policy estimators: replay (Li et al. 2011), IPS, self-normalised IPS, the direct method
and doubly robust, each with a confidence interval.

The array conventions are the Open Bandit Pipeline's, so the numbers can be checked against
it on the same data: ``action (n,)`` and ``position (n,)`` index the logged choice,
``pscore (n,)`` is the logging policy's propensity of it, ``action_dist (n, n_actions,
len_list)`` is the target policy's probability of each action at each position and
``q_hat`` (same shape) a reward model's estimate. Point estimates follow obp's formulas
exactly; intervals are normal (Wald) intervals from each estimator's per-round influence
values, or a percentile bootstrap with an explicit Generator (:func:`bootstrap_interval`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from fusionrec.bandits.base import BanditInputError

__all__ = [
    "Estimate",
    "ESTIMATORS",
    "replay",
    "ips",
    "snips",
    "direct_method",
    "doubly_robust",
    "estimate_all",
    "bootstrap_interval",
    "check_logged",
    "ridge_reward_model",
]

ESTIMATORS: tuple[str, ...] = ("replay", "ips", "snips", "dm", "dr")


@dataclass(frozen=True)
class Estimate:
    """An estimated policy value with a ``1 - alpha`` confidence interval."""

    estimator: str
    value: float
    lower: float
    upper: float
    stderr: float
    n: int
    """Rounds that informed the estimate (replay: the matched rounds)."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_logged(
    action: np.ndarray,
    action_dist: np.ndarray,
    reward: np.ndarray | None = None,
    pscore: np.ndarray | None = None,
    position: np.ndarray | None = None,
    q_hat: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Validate and convert logged arrays; raise :class:`BanditInputError` naming the problem."""
    action_dist = np.asarray(action_dist, dtype=np.float64)
    if action_dist.ndim != 3:
        raise BanditInputError(f"action_dist must have shape (n_rounds, n_actions, len_list), got {action_dist.shape}")
    n, n_actions, len_list = action_dist.shape
    action = np.asarray(action)
    if action.shape != (n,) or not np.issubdtype(action.dtype, np.integer):
        raise BanditInputError(f"action must be {n} integer actions (one per round), got shape {action.shape} dtype {action.dtype}")
    if n == 0:
        raise BanditInputError("the log has no rounds")
    if action.min() < 0 or action.max() >= n_actions:
        raise BanditInputError(f"action ids must lie in [0, {n_actions}), found {int(action.min())}..{int(action.max())}")
    if np.any(action_dist < -1e-12) or not np.all(np.isfinite(action_dist)):
        raise BanditInputError("action_dist holds negative or non-finite probabilities")
    sums = action_dist.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        r, p = np.unravel_index(int(np.argmax(np.abs(sums - 1.0))), sums.shape)
        raise BanditInputError(f"action_dist must sum to 1 over actions; round {r}, position {p} sums to {sums[r, p]:.6g}")
    if position is None:
        position = np.zeros(n, dtype=np.int64)
    position = np.asarray(position)
    if position.shape != (n,) or not np.issubdtype(position.dtype, np.integer):
        raise BanditInputError(f"position must be {n} integer positions, got shape {position.shape}")
    if position.min() < 0 or position.max() >= len_list:
        raise BanditInputError(f"positions must lie in [0, {len_list}), found {int(position.min())}..{int(position.max())}")
    if reward is not None:
        reward = np.asarray(reward, dtype=np.float64)
        if reward.shape != (n,) or not np.all(np.isfinite(reward)):
            raise BanditInputError(f"reward must be {n} finite numbers, got shape {reward.shape}")
    if pscore is not None:
        pscore = np.asarray(pscore, dtype=np.float64)
        if pscore.shape != (n,):
            raise BanditInputError(f"pscore must have {n} propensities, got shape {pscore.shape}")
        bad = np.flatnonzero(~((pscore > 0) & (pscore <= 1)))
        if bad.size:
            i = int(bad[0])
            raise BanditInputError(
                f"propensity must lie in (0, 1]: round {i} has {pscore[i]!r} ({bad.size} rounds out of range); "
                "a logged action with propensity 0 cannot have been chosen"
            )
    if q_hat is not None:
        q_hat = np.asarray(q_hat, dtype=np.float64)
        if q_hat.shape != action_dist.shape:
            raise BanditInputError(f"q_hat must have the shape of action_dist {action_dist.shape}, got {q_hat.shape}")
    return action, action_dist, reward, pscore, position, q_hat


def _wald(name: str, value: float, influence: np.ndarray, alpha: float, n: int | None = None) -> Estimate:
    m = len(influence)
    se = float(np.std(influence, ddof=1) / np.sqrt(m)) if m > 1 else float("nan")
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    return Estimate(name, float(value), float(value - z * se), float(value + z * se), se, m if n is None else n)


def _rows(n: int) -> np.ndarray:
    return np.arange(n)


def replay(reward, action, action_dist, position=None, alpha: float = 0.05) -> Estimate:
    """Replay (Li et al. 2011): the mean reward of the rounds where a deterministic target
    policy picks the logged action. Unbiased when the logging policy was uniform."""
    action, action_dist, reward, _, position, _ = check_logged(action, action_dist, reward, position=position)
    match = action_dist[_rows(len(action)), action, position] == 1
    if not match.any():
        return Estimate("replay", 0.0, float("nan"), float("nan"), float("nan"), 0)
    value = float(np.mean(match * reward / match.mean()))
    r = reward[match]
    return _wald("replay", value, r, alpha)


def _iw(action, action_dist, pscore, position) -> np.ndarray:
    return action_dist[_rows(len(action)), action, position] / pscore


def ips(reward, action, pscore, action_dist, position=None, alpha: float = 0.05) -> Estimate:
    """Inverse propensity scoring: ``mean(pi(a|x) / pscore * r)``."""
    action, action_dist, reward, pscore, position, _ = check_logged(action, action_dist, reward, pscore, position)
    v = reward * _iw(action, action_dist, pscore, position)
    return _wald("ips", float(v.mean()), v, alpha)


def snips(reward, action, pscore, action_dist, position=None, alpha: float = 0.05) -> Estimate:
    """Self-normalised IPS: ``sum(w r) / sum(w)``; interval by the delta method."""
    action, action_dist, reward, pscore, position, _ = check_logged(action, action_dist, reward, pscore, position)
    w = _iw(action, action_dist, pscore, position)
    value = float(np.mean(reward * w / w.mean()))
    influence = w * (reward - value) / w.mean()
    return _wald("snips", value, influence, alpha)


def _dm_rounds(action_dist, q_hat, position) -> np.ndarray:
    n = len(position)
    q = q_hat[_rows(n), :, position]
    pi = action_dist[_rows(n), :, position]
    return np.average(q, weights=pi, axis=1)


def direct_method(action, action_dist, q_hat, position=None, alpha: float = 0.05) -> Estimate:
    """Direct method: the reward model's value of the target policy, ``mean(sum_a pi(a|x) q(x, a))``.

    The interval covers the sampling of contexts only, not the reward model's own error."""
    action, action_dist, _, _, position, q_hat = check_logged(action, action_dist, position=position, q_hat=q_hat)
    v = _dm_rounds(action_dist, q_hat, position)
    return _wald("dm", float(v.mean()), v, alpha)


def doubly_robust(reward, action, pscore, action_dist, q_hat, position=None, alpha: float = 0.05) -> Estimate:
    """Doubly robust: DM plus the importance-weighted residual of the logged action."""
    action, action_dist, reward, pscore, position, q_hat = check_logged(action, action_dist, reward, pscore, position, q_hat)
    n = len(action)
    w = _iw(action, action_dist, pscore, position)
    v = _dm_rounds(action_dist, q_hat, position) + w * (reward - q_hat[_rows(n), action, position])
    return _wald("dr", float(v.mean()), v, alpha)


def estimate_all(
    reward,
    action,
    pscore,
    action_dist,
    q_hat=None,
    position=None,
    alpha: float = 0.05,
    estimators: tuple[str, ...] = ESTIMATORS,
) -> list[Estimate]:
    """Every requested estimator on one log (``dm``/``dr`` only when ``q_hat`` is given;
    ``replay`` only when the target policy is deterministic on the logged rounds)."""
    out = []
    for name in estimators:
        if name not in ESTIMATORS:
            raise BanditInputError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")
        if name == "replay":
            ad = np.asarray(action_dist)
            if np.all(np.isclose(ad.max(axis=1), 1.0)):
                out.append(replay(reward, action, action_dist, position, alpha))
        elif name == "ips":
            out.append(ips(reward, action, pscore, action_dist, position, alpha))
        elif name == "snips":
            out.append(snips(reward, action, pscore, action_dist, position, alpha))
        elif q_hat is not None and name == "dm":
            out.append(direct_method(action, action_dist, q_hat, position, alpha))
        elif q_hat is not None and name == "dr":
            out.append(doubly_robust(reward, action, pscore, action_dist, q_hat, position, alpha))
    return out


def bootstrap_interval(
    samples: np.ndarray, rng: np.random.Generator, n_bootstrap: int = 2000, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-round values (vectorised resampling)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1 or samples.size == 0:
        raise BanditInputError("bootstrap needs a non-empty 1-d array of per-round values")
    idx = rng.integers(0, samples.size, size=(n_bootstrap, samples.size))
    means = samples[idx].mean(axis=1)
    return float(np.percentile(means, 100 * alpha / 2)), float(np.percentile(means, 100 * (1 - alpha / 2)))


def ridge_reward_model(
    logged_contexts: np.ndarray, rewards: np.ndarray, all_contexts: np.ndarray, reg: float = 1.0
) -> np.ndarray:
    """A ridge regression of reward on the logged actions' contexts, predicted for every
    candidate: ``all_contexts (n, n_actions, d)`` -> ``q_hat (n, n_actions, 1)`` (for DM/DR)."""
    X = np.asarray(logged_contexts, dtype=np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    C = np.asarray(all_contexts, dtype=np.float64)
    if X.ndim != 2 or C.ndim != 3 or C.shape[2] != X.shape[1] or X.shape[0] != r.shape[0]:
        raise BanditInputError(
            f"reward model needs logged contexts (n, d), rewards (n,), all contexts (n, n_actions, d); "
            f"got {X.shape}, {r.shape}, {C.shape}"
        )
    theta = np.linalg.solve(X.T @ X + reg * np.eye(X.shape[1]), X.T @ r)
    return (C @ theta)[:, :, None]
