"""Privacy on ml-100k (RS 8:1:1, seed 2020): DP-SGD utility vs epsilon, federated vs central.

    python benchmarks/privacy_benchmark.py --part dp --epsilons 1,3,8,inf --epochs 20 --batch-size 8192
    python benchmarks/privacy_benchmark.py --part fed --rounds 50 --tt-rounds 200

DP: BPR-MF trained by ``fit_private`` (example-level DP, delta 1e-5), NDCG@10 and the
(epsilon, delta) opacus' accountant reports. Federated: ``fedavg_mf`` and ``fedavg_two_tower``
(one client per user, in-process) against central BPR and a central two-tower with the same
towers: NDCG@10, rounds and bytes exchanged.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from _script_setup import add_seed_and_out, ml100k_rs_split, script_parser, write_json


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--part", choices=["dp", "fed"], required=True)
    ap.add_argument("--epsilons", default="1,3,8,inf")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=150)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--tt-rounds", type=int, default=200)
    ap.add_argument("--tt-clients", type=int, default=50)
    ap.add_argument("--tt-lr", type=float, default=0.01)
    ap.add_argument("--tt-local-epochs", type=int, default=2)
    add_seed_and_out(ap, Path("benchmarks/results/privacy"))
    args = ap.parse_args(argv)

    from fusionrec.evaluation import Evaluator
    from fusionrec.models.classic.bpr import BPR

    sp = ml100k_rs_split(args.seed)
    ev = Evaluator(["ndcg"], ks=(10,))

    def ndcg(m) -> float:
        return float(ev.evaluate(m, sp.test, exclude=(sp.train, sp.valid)).metrics["ndcg@10"])

    rows: list[dict] = []
    if args.part == "dp":
        from fusionrec.privacy.dp import DPConfig, fit_private

        for e in [float(x) for x in args.epsilons.split(",")]:
            t = time.time()
            m = BPR(embedding_dim=args.dim, reg_weight=0.0)
            rep = fit_private(m, sp.train, DPConfig(target_epsilon=e, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, max_grad_norm=args.clip), seed=args.seed)
            row = {"target_epsilon": e, "ndcg@10": ndcg(m), **rep.as_dict(), "seconds": time.time() - t}
            rows.append(row)
            print(json.dumps(row), flush=True)
        print("| target ε | reported (ε, δ) | σ | steps | NDCG@10 |\n|---:|---|---:|---:|---:|")
        for r in rows:
            eps = "∞" if math.isinf(r["epsilon"]) else f"{r['epsilon']:.3f}"
            print(f"| {r['target_epsilon']} | ({eps}, {r['delta']:g}) | {r['noise_multiplier']:.3f} | {r['steps']} | {r['ndcg@10']:.4f} |")
    else:
        from fusionrec.models.neural.two_tower import TwoTower
        from fusionrec.privacy.federated import FedConfig, fedavg_mf
        from fusionrec.privacy.federated_two_tower import (
            FedTwoTowerConfig,
            _model,
            fedavg_two_tower,
        )

        def add(setting: str, m, rounds, nbytes, t0: float) -> None:
            rows.append({"setting": setting, "ndcg@10": ndcg(m), "rounds": rounds, "bytes": nbytes, "seconds": time.time() - t0})
            print(json.dumps(rows[-1]), flush=True)

        t = time.time()
        add("central BPR-MF (dim 64, early stopping)", BPR(embedding_dim=64).fit(sp.train, sp.valid, seed=args.seed), None, 0, t)
        tcfg = FedTwoTowerConfig(rounds=args.tt_rounds, clients_per_round=args.tt_clients, lr=args.tt_lr, local_epochs=args.tt_local_epochs)
        t = time.time()
        central = TwoTower(**{**_model(tcfg).config.model_dump(), "epochs": 50}).fit(sp.train, sp.valid, seed=args.seed)
        add(f"central two-tower (same towers, sampled softmax, {central.history_.as_frame().shape[0]} epochs, early stopping)", central, None, 0, t)
        t = time.time()
        m, rep = fedavg_mf(sp.train, FedConfig(rounds=args.rounds, clients_per_round=args.clients), seed=args.seed)
        add(f"federated MF ({args.clients} clients/round, 5 local epochs, sum of deltas)", m, args.rounds, rep.bytes_total, t)
        t = time.time()
        m, rep = fedavg_two_tower(sp.train, tcfg, seed=args.seed)
        add(f"federated two-tower ({args.tt_clients} clients/round, {args.tt_local_epochs} local steps, FedAvg)", m, args.tt_rounds, rep.bytes_total, t)
        print("| setting | rounds | bytes exchanged | NDCG@10 | seconds |\n|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['setting']} | {r['rounds'] or '—'} | {r['bytes'] / 1e9:.2f} GB | {r['ndcg@10']:.4f} | {r['seconds']:.0f} |")
    write_json(args.out, f"{args.part}.json", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
