"""Federated two-tower on ml-100k through Flower's simulation engine (``flwr[simulation]``).

Runs in the Flower environment (docs/privacy.md), not the project's:

    .bench/federated-venv/bin/python benchmarks/flower_federated.py --rounds 20 --clients 50

One Flower SuperNode per user (partition-id = user index); each client is
``make_flower_two_tower_client`` over a ``TwoTowerClientLogic``; the server strategy is Flower's
FedAvg with ``aggregate_fit`` replaced by ``row_mean_fedavg`` (the in-process simulator's
update). The user rows live in the client processes, so NDCG@10 is measured *federatedly*: in a
last evaluate round every client ranks all items with its own row and reports NDCG@10 on its own
test items (train and valid items excluded), and the server averages over users — the central
Evaluator's NDCG@10 (mean over test users) estimated on ``--eval-clients`` sampled users. Client state (the private row)
persists in the client process: the run uses one simulation actor.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

STATE: dict = {}


def _setup(seed: int, cfg) -> None:
    from fusionrec.data import load_dataset
    from fusionrec.data.splits import split
    from fusionrec.models.torch_base import init_parameters
    from fusionrec.privacy.dp import _prepare_fitted_state
    from fusionrec.privacy.federated_two_tower import PRIVATE_PARAM, TwoTowerClientLogic, _model

    torch.set_num_threads(1)
    sp = split(load_dataset("ml-100k"), "rs", (0.8, 0.1, 0.1), seed=seed)
    model = _model(cfg)
    _prepare_fitted_state(model, sp.train, None)
    model.device_ = torch.device("cpu")
    model._prepare(sp.train, np.random.default_rng(seed))
    module = model.build_module()
    init_parameters(module, torch.Generator().manual_seed(seed), std=model._init_std())
    names = [n for n, _ in module.named_parameters() if n != PRIVATE_PARAM]
    params = dict(module.named_parameters())
    rows0 = params[PRIVATE_PARAM].detach().numpy().copy()
    m, mv, mt = (d.matrix("csr") for d in (sp.train, sp.valid, sp.test))
    STATE.update(sp=sp, module=module, names=names, m=m, mv=mv, mt=mt,
                 server0=[params[n].detach().numpy().copy() for n in names],
                 clients={u: TwoTowerClientLogic(module, names, u, m.indices[m.indptr[u]:m.indptr[u + 1]], rows0[u], cfg, seed * 100_003 + u)
                          for u in range(sp.train.n_users)})


def _ndcg10(u: int, shared: list[np.ndarray]) -> float | None:
    logic = STATE["clients"][u]
    mt, m, mv = STATE["mt"], STATE["m"], STATE["mv"]
    test = mt.indices[mt.indptr[u]:mt.indptr[u + 1]]
    if len(test) == 0:
        return None
    module = STATE["module"]
    params = dict(module.named_parameters())
    with torch.no_grad():
        for n, a in zip(STATE["names"], shared, strict=True):
            params[n].copy_(torch.from_numpy(np.asarray(a)))
        params["user.id_emb.weight"][u] = torch.from_numpy(logic.user_row)
        module.eval()
        s = (module.user(torch.tensor([u])) @ module.item(torch.arange(m.shape[1])).T)[0].numpy()
    s[m.indices[m.indptr[u]:m.indptr[u + 1]]] = -np.inf
    s[mv.indices[mv.indptr[u]:mv.indptr[u + 1]]] = -np.inf
    top = np.argsort(-s, kind="stable")[:10]
    gain = np.isin(top, test) / np.log2(np.arange(2, 12))
    ideal = (1 / np.log2(np.arange(2, 2 + min(len(test), 10)))).sum()
    return float(gain.sum() / ideal)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--eval-clients", type=int, default=100, help="Users sampled for the federated NDCG@10 (all: 943).")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/privacy"))
    args = ap.parse_args(argv)

    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from fusionrec.privacy.federated_two_tower import FedTwoTowerConfig
    from fusionrec.privacy.flower_client import make_flower_two_tower_client, row_mean_fedavg

    cfg = FedTwoTowerConfig(rounds=args.rounds, clients_per_round=args.clients, lr=args.lr, local_epochs=args.local_epochs)
    _setup(args.seed, cfg)
    n_users = STATE["sp"].train.n_users
    item_table = STATE["names"].index("item.id_emb.weight")
    shared_bytes = sum(a.size * 4 for a in STATE["server0"])
    log: dict = {"fit_clients": 0, "eval": None}

    def client_fn(context: Context):
        if not STATE:
            _setup(args.seed, cfg)
        u = int(context.node_config["partition-id"])
        fit_client = make_flower_two_tower_client(STATE["clients"][u])

        class Client(NumPyClient):
            def fit(self, parameters, config):
                return fit_client.fit(parameters, config)

            def evaluate(self, parameters, config):
                v = _ndcg10(u, parameters)
                return 0.0, 0 if v is None else 1, {"ndcg10": 0.0 if v is None else v}

        return Client().to_client()

    class RowMean(FedAvg):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.current = [a.copy() for a in STATE["server0"]]

        def aggregate_fit(self, server_round, results, failures):
            if failures:
                raise RuntimeError(f"{len(failures)} client failures: {failures[:1]}")
            replies = [(parameters_to_ndarrays(r.parameters), r.num_examples) for _, r in results]
            log["fit_clients"] += len(replies)
            self.current = row_mean_fedavg(self.current, replies, item_table, cfg.server_lr)
            return ndarrays_to_parameters(self.current), {}

        def configure_evaluate(self, server_round, parameters, client_manager):
            return super().configure_evaluate(server_round, parameters, client_manager) if server_round == args.rounds else []

        def aggregate_evaluate(self, server_round, results, failures):
            vals = [r.metrics["ndcg10"] for _, r in results if r.num_examples > 0]
            if server_round == args.rounds:
                log["eval"] = {"ndcg10": float(np.mean(vals)), "users": len(vals), "failures": len(failures)}
            return 0.0, {}

    def server_fn(context: Context):
        strategy = RowMean(fraction_fit=args.clients / n_users, min_fit_clients=args.clients,
                           fraction_evaluate=args.eval_clients / n_users, min_evaluate_clients=args.eval_clients,
                           min_available_clients=n_users, initial_parameters=ndarrays_to_parameters(STATE["server0"]))
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=args.rounds))

    t = time.time()
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=n_users, backend_config={"client_resources": {"num_cpus": 2, "num_gpus": 0.0}})
    row = {"setting": f"Flower simulation, two-tower ({args.clients} clients/round, {args.local_epochs} local steps)",
           "rounds": args.rounds, "fit_replies": log["fit_clients"], "bytes": 2 * log["fit_clients"] * shared_bytes,
           "federated_eval": log["eval"], "seconds": time.time() - t}
    print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "flower.json").write_text(json.dumps(row, indent=1))
    return 0 if log["eval"] is not None and not math.isnan(log["eval"]["ndcg10"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
