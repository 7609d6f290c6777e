"""DP-SGD: the reported epsilon is opacus' accountant's for the settings; the model is usable."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("opacus")

from opacus.accountants.analysis import rdp as rdp_analysis  # noqa: E402

from fusionrec.errors import ConfigError  # noqa: E402
from fusionrec.models.base import load_model  # noqa: E402
from fusionrec.models.classic.bpr import BPR  # noqa: E402
from fusionrec.models.neural.two_tower import TwoTower  # noqa: E402
from fusionrec.privacy.dp import DPConfig, epsilon_for, fit_private  # noqa: E402
from fusionrec.testing.toy import checkerboard  # noqa: E402


@pytest.fixture(scope="module")
def toy():
    return checkerboard()[0]


def _rdp_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """Epsilon straight from opacus' RDP analysis (the accountant's own formulas, default orders)."""
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    rdp = rdp_analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    eps, _ = rdp_analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=delta)
    return float(eps)


def test_epsilon_matches_accountant_fixed_sigma(toy, tmp_path: Path) -> None:
    dp = DPConfig(noise_multiplier=1.3, batch_size=8, epochs=3, delta=1e-4)
    model = BPR(embedding_dim=4)
    rep = fit_private(model, toy, dp, seed=1)
    q = 8 / toy.n_interactions
    steps = round(1 / q) * 3
    assert rep.sample_rate == pytest.approx(q) and rep.steps == steps
    assert rep.epsilon == pytest.approx(_rdp_epsilon(1.3, q, steps, 1e-4), rel=1e-9)
    assert rep.epsilon == pytest.approx(epsilon_for(1.3, q, steps, 1e-4), rel=1e-9)
    scores = model.score_indices(np.arange(toy.n_users))
    assert np.isfinite(scores).all()
    back = load_model(model.save(tmp_path / "m"))
    np.testing.assert_allclose(back.score_indices(np.arange(toy.n_users)), scores, rtol=1e-6)


def test_target_epsilon_is_met(toy) -> None:
    rep = fit_private(TwoTower(loss="sampled", num_negatives=4, embedding_dim=4, out_dim=4, hidden_dims=(8,)), toy,
                      DPConfig(target_epsilon=2.0, batch_size=8, epochs=2), seed=0)
    assert rep.noise_multiplier > 0
    assert rep.epsilon <= 2.0 + 0.02  # opacus' search tolerance (epsilon_tolerance=0.01)
    assert rep.epsilon == pytest.approx(_rdp_epsilon(rep.noise_multiplier, rep.sample_rate, rep.steps, rep.delta), rel=1e-9)


def test_no_privacy_reference_and_refusals(toy) -> None:
    rep = fit_private(BPR(embedding_dim=4), toy, DPConfig(target_epsilon=math.inf, batch_size=8, epochs=1))
    assert rep.epsilon == math.inf and rep.noise_multiplier == 0.0
    with pytest.raises(ConfigError, match="in-batch"):
        fit_private(TwoTower(), toy, DPConfig())
    with pytest.raises(ConfigError, match="exceeds"):
        fit_private(BPR(), toy, DPConfig(batch_size=10_000))
