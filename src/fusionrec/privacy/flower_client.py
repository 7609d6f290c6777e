"""Flower clients for federated BPR-MF (the ``federated`` extra: ``flwr[simulation]==1.41.0``).

``make_flower_client(logic)`` wraps one :class:`~fusionrec.privacy.federated.MFClientLogic`
(one user's interactions and private user vector) as a Flower ``NumPyClient``. The parameters
exchanged are the item table only. With ``config["aggregation"] == "sum"`` and
``config["clients_per_round"] == K`` the client returns ``Q + K * (Q_local - Q)`` with weight 1,
so Flower's stock FedAvg (a weighted mean) yields exactly ``Q + sum of deltas``, the update
:func:`~fusionrec.privacy.federated.fedavg_mf` applies; otherwise it returns ``Q_local`` with
its interaction count (plain FedAvg).

Flower pins older fastapi/typer/rich than the project, so it lives in its own environment
(docs/privacy.md); this module imports it only when a client is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionrec.privacy.federated import MFClientLogic

__all__ = ["make_flower_client", "make_flower_two_tower_client", "row_mean_fedavg"]


def make_flower_client(logic: MFClientLogic) -> Any:
    """A ``flwr.client.NumPyClient`` running ``logic`` (raises ImportError without flwr)."""
    from flwr.client import NumPyClient

    class MFClient(NumPyClient):
        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return []  # the server owns the item table; the user vector never leaves

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
            q = np.asarray(parameters[0], dtype=np.float32)
            q_local = logic.fit(q)
            if config.get("aggregation", "sum") == "sum":
                k = int(config.get("clients_per_round", 1))
                return [q + k * (q_local - q)], 1, {}
            return [q_local], len(logic.items), {}

        def evaluate(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[float, int, dict]:
            q = np.asarray(parameters[0], dtype=np.float32)
            scores = q @ logic.user_vec
            pos = scores[logic.items]
            auc = float((pos[:, None] > scores[logic.unseen][None, :]).mean()) if len(logic.unseen) else 1.0
            return 1.0 - auc, len(logic.items), {"auc": auc}

    return MFClient()


def make_flower_two_tower_client(logic: Any) -> Any:
    """A ``flwr.client.NumPyClient`` running one
    :class:`~fusionrec.privacy.federated_two_tower.TwoTowerClientLogic`: it receives the shared
    parameters, trains locally and returns them with its interaction count (the user-id row
    stays in ``logic``). Aggregate with :func:`row_mean_fedavg` to match
    :func:`~fusionrec.privacy.federated_two_tower.fedavg_two_tower`."""
    from flwr.client import NumPyClient

    class TwoTowerClient(NumPyClient):
        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return []

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
            return logic.fit([np.asarray(p, dtype=np.float32) for p in parameters]), len(logic.items), {}

    return TwoTowerClient()


def row_mean_fedavg(old: list[np.ndarray], replies: list[tuple[list[np.ndarray], int]], item_table: int,
                    server_lr: float = 1.0) -> list[np.ndarray]:
    """The server update of ``fedavg_two_tower`` from Flower fit replies ``(parameters, n)``:
    interaction-weighted mean delta for dense layers, for the ``item_table`` parameter the mean
    delta over the clients that changed each row."""
    total = float(sum(n for _, n in replies))
    out = []
    for j, base in enumerate(old):
        deltas = [np.asarray(p[j], dtype=np.float32) - base for p, _ in replies]
        if j == item_table:
            touched = [np.abs(d).sum(1) > 0 for d in deltas]
            acc = sum(d * t[:, None] for d, t in zip(deltas, touched, strict=True))
            cnt = np.maximum(sum(t.astype(np.float32) for t in touched), 1.0)
            out.append(base + server_lr * acc / cnt[:, None])
        else:
            out.append(base + server_lr * sum(n * d for d, (_, n) in zip(deltas, replies, strict=True)) / total)
    return out
