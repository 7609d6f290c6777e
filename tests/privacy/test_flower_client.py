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


def test_two_tower_through_flower_client_matches_in_process_round() -> None:
    """Two Flower two-tower clients' replies, aggregated by row_mean_fedavg, give exactly the
    in-process round of fedavg_two_tower (same clients, same seeds)."""
    import torch

    from fusionrec.privacy.dp import _prepare_fitted_state
    from fusionrec.privacy.federated_two_tower import (
        FedTwoTowerConfig,
        TwoTowerClientLogic,
        _model,
        _round,
    )
    from fusionrec.privacy.flower_client import make_flower_two_tower_client, row_mean_fedavg
    from fusionrec.testing.toy import checkerboard

    ds, _ = checkerboard()
    cfg = FedTwoTowerConfig(embedding_dim=4, hidden_dims=(8,), out_dim=4, num_negatives=4, clients_per_round=2)
    model = _model(cfg)
    _prepare_fitted_state(model, ds, None)
    model.device_ = torch.device("cpu")
    model._prepare(ds, np.random.default_rng(0))
    module = model.build_module()
    names = [n for n, _ in module.named_parameters() if n != "user.id_emb.weight"]
    server = [p.detach().numpy().copy() for n, p in module.named_parameters() if n != "user.id_emb.weight"]
    row = np.zeros(4, np.float32)
    m = ds.matrix("csr")
    mk = lambda u: TwoTowerClientLogic(module, names, u, m.indices[m.indptr[u]:m.indptr[u + 1]], row, cfg, 10 + u)  # noqa: E731
    item_table = names.index("item.id_emb.weight")
    replies = [make_flower_two_tower_client(mk(u)).fit([a.copy() for a in server], {})[:2] for u in (0, 1)]
    got = row_mean_fedavg(server, replies, item_table)
    want = [a.copy() for a in server]
    clients = {0: mk(0), 1: mk(1)}

    class _Pick:  # the in-process round's client draw, fixed to users 0 and 1
        def choice(self, active, k, replace=False):
            return np.array([0, 1])

    _round(clients, np.array([0, 1]), 2, want, item_table, 0, cfg, _Pick(), 0, 0)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
