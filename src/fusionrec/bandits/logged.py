"""Logged bandit feedback on disk (``.npz``, read with ``allow_pickle=False``) and the
target-policy arrays the estimators need.

A log holds, per round: ``candidates (n, m)`` arm ids, optional ``contexts (n, m, d)``,
``action (n,)`` the chosen candidate position, ``reward (n,)``, ``pscore (n,)`` the logging
propensity and optional ``position (n,)`` (slot in a slate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionrec.bandits.base import BanditInputError, Policy
from fusionrec.bandits.simulator import BanditEnvironment
from fusionrec.errors import DataFormatError

__all__ = ["BanditLog", "load_log", "log_from_environment", "target_action_dist"]


@dataclass(frozen=True)
class BanditLog:
    candidates: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    contexts: np.ndarray | None = None
    position: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.action)
        if self.candidates.ndim != 2 or self.candidates.shape[0] != n:
            raise BanditInputError(f"candidates must have shape ({n}, m), got {self.candidates.shape}")
        for name in ("reward", "pscore"):
            if getattr(self, name).shape != (n,):
                raise BanditInputError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")
        if self.contexts is not None and self.contexts.shape[:2] != self.candidates.shape:
            raise BanditInputError(f"contexts must have shape {self.candidates.shape + ('d',)}, got {self.contexts.shape}")
        bad = np.flatnonzero(~((self.pscore > 0) & (self.pscore <= 1)))
        if bad.size:
            raise BanditInputError(f"propensity must lie in (0, 1]: round {int(bad[0])} has {self.pscore[bad[0]]!r}")
        if n and (self.action.min() < 0 or self.action.max() >= self.candidates.shape[1]):
            raise BanditInputError(f"action must be a candidate position in [0, {self.candidates.shape[1]})")

    @property
    def n_rounds(self) -> int:
        return len(self.action)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        arrays = {k: v for k, v in self.__dict__.items() if v is not None}
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        return path


def load_log(path: str | Path) -> BanditLog:
    """Read a log written by :meth:`BanditLog.save`; a bad file raises :class:`DataFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "no such log file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise DataFormatError(path, None, f"not a readable .npz bandit log ({e})") from None
    missing = {"candidates", "action", "reward", "pscore"} - set(arrays)
    if missing:
        raise DataFormatError(path, None, f"bandit log lacks arrays {sorted(missing)} (has {sorted(arrays)})")
    unknown = set(arrays) - {"candidates", "action", "reward", "pscore", "contexts", "position"}
    if unknown:
        raise DataFormatError(path, None, f"unknown arrays in bandit log: {sorted(unknown)}")
    try:
        return BanditLog(**arrays)
    except BanditInputError as e:
        raise DataFormatError(path, None, str(e)) from None


def log_from_environment(
    env: BanditEnvironment, logger: Policy, n_rounds: int, rng: np.random.Generator
) -> tuple[BanditLog, np.ndarray]:
    """Log ``n_rounds`` rounds of a fixed (non-learning) logging policy; returns the log and
    the environment rows it drew (to compute true values)."""
    rows = env.rows(n_rounds, rng)
    probs = np.stack([logger.probabilities(env.candidates[s], env.contexts[s] if logger.contextual else None, rng) for s in np.unique(rows)])
    row_probs = probs[np.searchsorted(np.unique(rows), rows)]
    u = rng.random(len(rows))[:, None]
    action = np.minimum((u > np.cumsum(row_probs, axis=1)).sum(axis=1), env.n_candidates - 1)
    p = env.probs[rows, action]
    reward = (rng.random(len(rows)) < p).astype(np.float64)
    log = BanditLog(env.candidates[rows], action.astype(np.int64), reward, row_probs[np.arange(len(rows)), action], env.contexts[rows])
    return log, rows


def target_action_dist(policy: Policy, log: BanditLog, rng: np.random.Generator | None = None) -> np.ndarray:
    """The target policy's first-slot probabilities on every logged round, (n, m, 1)."""
    if policy.contextual and log.contexts is None:
        raise BanditInputError(f"policy {policy.name!r} is contextual but the log has no contexts")
    out = np.stack(
        [
            policy.probabilities(log.candidates[t], None if log.contexts is None or not policy.contextual else log.contexts[t], rng)
            for t in range(log.n_rounds)
        ]
    )
    return out[:, :, None]
