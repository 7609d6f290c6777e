"""Federated two-tower: the user row stays on its client, the aggregation is FedAvg, it learns."""

from __future__ import annotations

import numpy as np
import torch

from fusionrec.models.base import load_model
from fusionrec.privacy.federated_two_tower import PRIVATE_PARAM, FedTwoTowerConfig, fedavg_two_tower
from fusionrec.testing.toy import checkerboard


def test_one_client_per_round_is_that_clients_update() -> None:
    """With one client per round and server_lr 1, the server ends exactly where the client's
    local training left the shared parameters (FedAvg of one), and the user rows of users
    never chosen keep their initial value."""
    ds, _ = checkerboard()
    cfg = FedTwoTowerConfig(embedding_dim=4, hidden_dims=(8,), out_dim=4, num_negatives=4, rounds=1, clients_per_round=1, local_epochs=2)
    model, rep = fedavg_two_tower(ds, cfg, seed=3)
    init, _ = fedavg_two_tower(ds, cfg.model_copy(update={"lr": 1e-12}), seed=3)
    shared = sum(p.numel() for n, p in model.module_.named_parameters() if n != PRIVATE_PARAM)
    assert rep.bytes_down == rep.bytes_up == shared * 4
    rows_now = model.module_.user.id_emb.weight.detach()
    rows_init = init.module_.user.id_emb.weight.detach()
    moved = torch.nonzero((rows_now - rows_init).abs().sum(1) > 1e-6).flatten()
    assert len(moved) == 1  # only the chosen client's private row changed
    item_moved = (model.module_.item.id_emb.weight - init.module_.item.id_emb.weight).abs().sum(1) > 1e-6
    u = int(moved[0])
    seen = set(ds.matrix("csr")[u].indices.tolist())
    assert seen <= set(torch.nonzero(item_moved).flatten().tolist())  # its positives were updated


def test_fedavg_two_tower_learns_checkerboard(tmp_path) -> None:
    ds, groups = checkerboard()
    cfg = FedTwoTowerConfig(embedding_dim=8, hidden_dims=(16,), out_dim=8, num_negatives=8, rounds=40,
                            clients_per_round=8, local_epochs=2, lr=0.5)
    model, rep = fedavg_two_tower(ds, cfg, seed=0)
    assert rep.rounds == 40 and rep.clients_per_round == 8
    top = model.recommend_indices(np.arange(ds.n_users), k=1)[0][:, 0]
    user_group = [groups[u][0] for u in ds.users.ids]
    item_group = [ds.items.ids[i][0] for i in top]
    agree = float(np.mean([a == b for a, b in zip(user_group, item_group, strict=True)]))
    assert agree >= 0.9, agree
    back = load_model(model.save(tmp_path / "fed_tt"))
    np.testing.assert_allclose(back.score_indices(np.arange(4)), model.score_indices(np.arange(4)), rtol=1e-5)
