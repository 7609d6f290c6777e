"""Slate selection rules shared by the policies, each returning slot-wise propensities.

Ties are broken by candidate order (the recommender's ranking), so a deterministic policy
with no information yet reproduces the recommender's order.
"""

from __future__ import annotations

import numpy as np

from fusionrec.bandits.base import Decision

__all__ = [
    "argmax_slate",
    "draws_slate",
    "draws_probabilities",
    "egreedy_slate",
    "egreedy_probabilities",
    "softmax_slate",
    "softmax_probabilities",
    "uniform_slate",
]


def _decision(arms: np.ndarray, pos: list[int], props: list[float]) -> Decision:
    p = np.asarray(pos, dtype=np.int64)
    return Decision(positions=p, arms=arms[p], propensities=np.asarray(props, dtype=np.float64))


def argmax_slate(arms: np.ndarray, index: np.ndarray, k: int) -> Decision:
    """Deterministic: the k highest indices (stable: earlier candidates win ties), propensity 1."""
    order = np.argsort(-index, kind="stable")[:k]
    return _decision(arms, order.tolist(), [1.0] * len(order))


def draws_slate(arms: np.ndarray, draws: np.ndarray, k: int) -> Decision:
    """Thompson sampling: row 0 of ``draws`` (S+1, n) decides; every row estimates propensities.

    The propensity of slot j is the share of rows whose best candidate among those not yet
    placed is the chosen one (row 0 included, so it is never 0)."""
    order = np.argsort(-draws[0], kind="stable")[:k]
    masked = draws.copy()
    props = []
    for p in order.tolist():
        best = np.argmax(masked, axis=1)
        props.append(float(np.mean(best == p)))
        masked[:, p] = -np.inf
    return _decision(arms, order.tolist(), props)


def draws_probabilities(draws: np.ndarray) -> np.ndarray:
    """Probability of each candidate being the first choice, estimated from the draws' argmax."""
    best = np.argmax(draws, axis=1)
    return np.bincount(best, minlength=draws.shape[1]) / draws.shape[0]


def egreedy_probabilities(est: np.ndarray, eps: float, remaining: np.ndarray | None = None) -> np.ndarray:
    """``eps / n`` to every remaining candidate plus ``1 - eps`` to the best remaining one."""
    n = len(est)
    rem = np.ones(n, bool) if remaining is None else remaining
    probs = np.where(rem, eps / rem.sum(), 0.0)
    best = np.flatnonzero(rem)[np.argmax(est[rem])]
    probs[best] += 1.0 - eps
    return probs


def egreedy_slate(arms: np.ndarray, est: np.ndarray, eps: float, k: int, rng: np.random.Generator) -> Decision:
    rem = np.ones(len(est), bool)
    pos, props = [], []
    for _ in range(k):
        probs = egreedy_probabilities(est, eps, rem)
        p = int(rng.choice(len(est), p=probs))
        pos.append(p)
        props.append(float(probs[p]))
        rem[p] = False
    return _decision(arms, pos, props)


def softmax_probabilities(est: np.ndarray, temperature: float, remaining: np.ndarray | None = None) -> np.ndarray:
    z = est / temperature
    if remaining is not None:
        z = np.where(remaining, z, -np.inf)
    z = z - np.max(z)
    w = np.exp(z)
    return w / w.sum()


def softmax_slate(arms: np.ndarray, est: np.ndarray, temperature: float, k: int, rng: np.random.Generator) -> Decision:
    rem = np.ones(len(est), bool)
    pos, props = [], []
    for _ in range(k):
        probs = softmax_probabilities(est, temperature, rem)
        p = int(rng.choice(len(est), p=probs))
        pos.append(p)
        props.append(float(probs[p]))
        rem[p] = False
    return _decision(arms, pos, props)


def uniform_slate(arms: np.ndarray, k: int, rng: np.random.Generator) -> Decision:
    n = len(arms)
    pos = rng.choice(n, size=k, replace=False).tolist()
    return _decision(arms, pos, [1.0 / (n - j) for j in range(k)])
