"""Small hand-made bandit problems shared by the bandit tests."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.bandits.simulator import BanditEnvironment


@pytest.fixture
def linear_env() -> BanditEnvironment:
    """50 sources x 8 candidates, contexts in R^4, reward probability linear in the context."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 8, 4))
    X[:, :, 3] = 1.0
    theta = np.array([0.15, -0.1, 0.08, 0.5])
    probs = np.clip(X @ theta, 0.02, 0.98)
    cand = np.tile(np.arange(8), (50, 1))
    return BanditEnvironment(cand, X, probs, n_arms=8)
