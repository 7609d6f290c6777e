"""ADWIN drift detection: river's and our own implementation see a shift, not a stationary stream."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.bandits.drift import DriftDetector


@pytest.mark.parametrize("backend", ["own", "river"])
def test_detects_a_drop_in_reward_rate(backend):
    if backend == "river":
        pytest.importorskip("river")
    rng = np.random.default_rng(0)
    d = DriftDetector(backend=backend)
    stream = np.r_[rng.random(3000) < 0.7, rng.random(3000) < 0.3].astype(float)
    for x in stream:
        d.update(x)
    assert d.backend == backend and d.events
    first = d.events[0]
    assert 3000 < first.n_seen < 3600 and first.mean_after < first.mean_before


def test_no_alarm_on_a_stationary_stream():
    rng = np.random.default_rng(1)
    d = DriftDetector(backend="own")
    for x in (rng.random(6000) < 0.5).astype(float):
        d.update(x)
    assert d.events == []


def test_unknown_backend():
    with pytest.raises(ValueError, match="auto, river or own"):
        DriftDetector(backend="x")
