"""Federated BPR-MF: user vectors stay on clients, traffic counted, the model learns the toy."""

from __future__ import annotations

import numpy as np

from fusionrec.models.base import load_model
from fusionrec.privacy.federated import FedConfig, MFClientLogic, fedavg_mf
from fusionrec.testing.toy import checkerboard


def test_client_only_touches_its_items_and_negatives() -> None:
    cfg = FedConfig(embedding_dim=4, local_epochs=1)
    c = MFClientLogic(np.array([0, 1]), 6, np.ones(4), cfg, seed=0)
    q = np.full((6, 4), 0.1, np.float32)
    out = c.fit(q)
    changed = np.flatnonzero(np.abs(out - q).sum(1) > 0)
    assert set(changed.tolist()) - {0, 1} <= set(c.unseen.tolist())
    assert (out[[0, 1]] > q[[0, 1]]).all()  # positives pulled toward p = (1, 1, 1, 1)
    assert not np.allclose(c.user_vec, 1.0)  # the private vector moved, on the client


def test_fedavg_learns_checkerboard(tmp_path) -> None:
    ds, groups = checkerboard()
    cfg = FedConfig(embedding_dim=4, rounds=60, clients_per_round=6, local_epochs=3, lr=0.1)
    model, rep = fedavg_mf(ds, cfg, seed=0)
    assert rep.bytes_down == rep.bytes_up == 60 * 6 * ds.n_items * 4 * 4
    top = model.recommend_indices(np.arange(ds.n_users), k=1)[0][:, 0]
    user_group = [groups[u][0] for u in ds.users.ids]
    item_group = [ds.items.ids[i][0] for i in top]
    assert np.mean([a == b for a, b in zip(user_group, item_group, strict=True)]) >= 0.8
    back = load_model(model.save(tmp_path / "fed"))
    np.testing.assert_allclose(back.score_indices(np.arange(3)), model.score_indices(np.arange(3)), rtol=1e-6)
