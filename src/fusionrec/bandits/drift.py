"""Drift detection on a reward stream: ADWIN (Bifet & Gavalda 2007).

Uses ``river.drift.ADWIN`` when river is installed; otherwise :class:`SimpleADWIN`, our own
implementation of the same test on an explicit window (exact cut test, O(window) per
check every ``clock`` values, the window capped at ``max_window``) so the service works
without river. Both report the window mean before and after a detected change.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["DriftDetector", "SimpleADWIN", "DriftEvent", "make_detector"]


@dataclass(frozen=True)
class DriftEvent:
    n_seen: int
    mean_before: float
    mean_after: float


class SimpleADWIN:
    """ADWIN's cut test on an explicit window: drop the oldest part while some split of the
    window has sub-window means differing by more than ``eps_cut`` (delta confidence)."""

    def __init__(self, delta: float = 0.002, clock: int = 32, max_window: int = 5000, min_window: int = 10) -> None:
        self.delta, self.clock, self.max_window, self.min_window = delta, clock, max_window, min_window
        self.window: deque[float] = deque()
        self.n_seen = 0
        self.drift_detected = False

    @property
    def estimation(self) -> float:
        return float(np.mean(self.window)) if self.window else 0.0

    def update(self, x: float) -> None:
        self.drift_detected = False
        self.window.append(float(x))
        self.n_seen += 1
        if len(self.window) > self.max_window:
            self.window.popleft()
        if self.n_seen % self.clock:
            return
        while len(self.window) >= 2 * self.min_window:
            w = np.asarray(self.window)
            n = len(w)
            cut = self._find_cut(w, n)
            if cut is None:
                break
            for _ in range(cut):
                self.window.popleft()
            self.drift_detected = True

    def _find_cut(self, w: np.ndarray, n: int) -> int | None:
        cs = np.cumsum(w)
        i = np.arange(self.min_window, n - self.min_window + 1)
        n0, n1 = i.astype(np.float64), (n - i).astype(np.float64)
        mu0, mu1 = cs[i - 1] / n0, (cs[-1] - cs[i - 1]) / n1
        var = float(np.var(w))
        m = 1.0 / (1.0 / n0 + 1.0 / n1)
        dd = math.log(2.0 * math.log(n) / self.delta)
        eps = np.sqrt(2.0 / m * var * dd) + 2.0 / (3.0 * m) * dd
        hit = np.flatnonzero(np.abs(mu0 - mu1) > eps)
        return int(i[hit[0]]) if hit.size else None


class DriftDetector:
    """Feeds rewards to ADWIN and records each detected change."""

    def __init__(self, delta: float = 0.002, backend: str = "auto") -> None:
        self._adwin, self.backend = make_detector(delta, backend)
        self.events: list[DriftEvent] = []
        self.n_seen = 0

    def update(self, reward: float) -> DriftEvent | None:
        before = float(self._adwin.estimation)
        self._adwin.update(float(reward))
        self.n_seen += 1
        if self._adwin.drift_detected:
            ev = DriftEvent(self.n_seen, before, float(self._adwin.estimation))
            self.events.append(ev)
            return ev
        return None


def make_detector(delta: float = 0.002, backend: str = "auto") -> tuple[object, str]:
    """(detector, backend name): ``river``'s ADWIN (``backend="river"``, or ``"auto"`` when
    river is installed) or :class:`SimpleADWIN` (``"own"``)."""
    if backend not in ("auto", "river", "own"):
        raise ValueError(f"drift backend must be auto, river or own, got {backend!r}")
    if backend in ("auto", "river"):
        try:
            from river.drift import ADWIN
        except ImportError:
            if backend == "river":
                raise
        else:
            return ADWIN(delta=delta), "river"
    return SimpleADWIN(delta=delta), "own"
