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

__all__ = ["make_flower_client"]


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
