"""Federated BPR-MF (FedAvg over users; Ammad-ud-din et al. 2019's federated CF).

Each client is one user and holds only their own interactions and their own user vector, which
never leaves the client. A round: the server sends the item table Q to ``clients_per_round``
sampled clients; each runs ``local_epochs`` of BPR gradient steps on its interactions (uniform
negatives among the items it has not seen) and returns its updated Q; the server adds the sum of the
clients' deltas (``aggregation='sum'``) or their interaction-weighted mean (plain FedAvg). Bytes counted: Q down and Q up per sampled client
(float32), the dense FedAvg exchange.

:class:`MFClientLogic` is the client's computation; :mod:`fusionrec.privacy.flower_client`
wraps it as a Flower ``NumPyClient`` (the ``federated`` extra). :func:`fedavg_mf` runs the same
clients in-process (the simulation used when Flower is not installed, and for the benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.dataset import Dataset
from fusionrec.models.classic.bpr import BPR, BPRModule
from fusionrec.privacy.dp import _prepare_fitted_state

__all__ = ["FedConfig", "FedReport", "MFClientLogic", "fedavg_mf"]


class FedConfig(BaseModel):
    """Federated training settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding_dim: int = Field(64, ge=1)
    rounds: int = Field(100, ge=1)
    clients_per_round: int = Field(100, ge=1)
    """Users sampled per round (without replacement)."""
    local_epochs: int = Field(5, ge=1)
    lr: float = Field(0.05, gt=0)
    """Local SGD step size."""
    reg: float = Field(1e-3, ge=0)
    """L2 penalty on the vectors updated."""
    init_std: float = Field(0.1, gt=0)
    aggregation: Literal["sum", "mean"] = "sum"
    """``sum``: Q += the sum of the clients' deltas (federated CF: each item row gets the updates of
    every client that has it); ``mean``: the interaction-weighted average of the returned tables
    (plain FedAvg, which dilutes an item's update by the clients that never saw it)."""


@dataclass(frozen=True)
class FedReport:
    rounds: int
    clients_per_round: int
    bytes_down: int
    bytes_up: int

    @property
    def bytes_total(self) -> int:
        return self.bytes_down + self.bytes_up


class MFClientLogic:
    """One user's side: their item list, their private user vector, the local BPR steps."""

    def __init__(self, items: np.ndarray, n_items: int, user_vec: np.ndarray, cfg: FedConfig, seed: int) -> None:
        self.items = np.asarray(items, dtype=np.int64)
        self.n_items = n_items
        self.user_vec = np.asarray(user_vec, dtype=np.float32).copy()
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        seen = np.zeros(n_items, bool)
        seen[self.items] = True
        self.unseen = np.flatnonzero(~seen)

    def fit(self, q: np.ndarray) -> np.ndarray:
        """Local training from the server's item table ``q``; returns the updated table."""
        q = q.copy()
        p = self.user_vec
        c = self.cfg
        if len(self.unseen) == 0:
            return q
        for _ in range(c.local_epochs):
            neg = self.unseen[self.rng.integers(0, len(self.unseen), len(self.items))]
            qi, qj = q[self.items], q[neg]
            x = (qi - qj) @ p
            g = (1.0 / (1.0 + np.exp(x))).astype(np.float32)[:, None]  # sigmoid(-x)
            p_new = p + c.lr * ((g * (qi - qj)).mean(0) - c.reg * p)
            np.add.at(q, self.items, c.lr * (g * p[None, :] - c.reg * qi))
            np.add.at(q, neg, c.lr * (-g * p[None, :] - c.reg * qj))
            p = p_new.astype(np.float32)
        self.user_vec = p
        return q


def fedavg_mf(train: Dataset, cfg: FedConfig | None = None, seed: int = 0) -> tuple[BPR, FedReport]:
    """FedAvg of BPR-MF over one client per user (see module doc); returns a fitted
    :class:`~fusionrec.models.classic.bpr.BPR` (it saves/loads as one) and the traffic."""
    cfg = cfg or FedConfig()
    rng = np.random.default_rng(seed)
    m = train.matrix("csr")
    n_u, n_i, d = train.n_users, train.n_items, cfg.embedding_dim
    q = rng.normal(0, cfg.init_std, (n_i, d)).astype(np.float32)
    clients = [
        MFClientLogic(m.indices[m.indptr[u] : m.indptr[u + 1]], n_i, rng.normal(0, cfg.init_std, d), cfg, seed * 100_003 + u)
        for u in range(n_u)
    ]
    active = np.flatnonzero(np.diff(m.indptr) > 0)
    k = min(cfg.clients_per_round, len(active))
    down = up = 0
    table_bytes = q.size * 4
    for _ in range(cfg.rounds):
        chosen = rng.choice(active, k, replace=False)
        acc = np.zeros_like(q)
        weight = 0.0
        for u in chosen:
            w = 1.0 if cfg.aggregation == "sum" else float(len(clients[u].items))
            acc += w * (clients[u].fit(q) - q)
            weight += w
            down += table_bytes
            up += table_bytes
        q = q + (acc if cfg.aggregation == "sum" else acc / weight)
    model = BPR(embedding_dim=d)
    _prepare_fitted_state(model, train, None)
    module = BPRModule(n_u, n_i, d, model.config.reg_weight)
    with torch.no_grad():
        module.user.weight.copy_(torch.from_numpy(np.stack([c.user_vec for c in clients])))
        module.item.weight.copy_(torch.from_numpy(q))
    model.device_ = torch.device("cpu")
    model.module_ = module.eval()
    model.fitted_ = True
    return model, FedReport(cfg.rounds, k, down, up)
