"""The Flower client: Flower's own FedAvg aggregate of its replies equals fedavg_mf's update.

Runs where flwr imports (its own venv: see docs/privacy.md); skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

flwr = pytest.importorskip("flwr")

from flwr.server.strategy.aggregate import aggregate  # noqa: E402

from fusionrec.privacy.federated import FedConfig, MFClientLogic  # noqa: E402
from fusionrec.privacy.flower_client import make_flower_client  # noqa: E402


def _pair(seed: int) -> tuple[MFClientLogic, MFClientLogic]:
    cfg = FedConfig(embedding_dim=3, local_epochs=2)
    mk = lambda: MFClientLogic(np.array([0, 2, 3]), 8, np.full(3, 0.5), cfg, seed)  # noqa: E731
    return mk(), mk()


def test_sum_aggregation_through_flower_fedavg() -> None:
    q = np.random.default_rng(0).normal(0, 0.1, (8, 3)).astype(np.float32)
    (a1, a2), (b1, b2) = _pair(1), _pair(2)
    want = q + (a1.fit(q) - q) + (b1.fit(q) - q)
    replies = [make_flower_client(c).fit([q], {"aggregation": "sum", "clients_per_round": 2}) for c in (a2, b2)]
    got = aggregate([(params, n) for params, n, _ in replies])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert replies[0][0][0].shape == (8, 3) and make_flower_client(a2).get_parameters({}) == []


def test_evaluate_reports_auc() -> None:
    c, _ = _pair(0)
    loss, n, metrics = make_flower_client(c).evaluate([np.eye(8, 3, dtype=np.float32)], {})
    assert n == 3 and 0.0 <= metrics["auc"] <= 1.0 and loss == pytest.approx(1 - metrics["auc"])
