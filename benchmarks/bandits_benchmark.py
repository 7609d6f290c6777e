"""Bandit figures on MovieLens-100k: policies in the semi-synthetic simulator and in
time-ordered replay, the OPE estimators' bias/RMSE against on-policy values, and the
agreement of our estimators with the Open Bandit Pipeline (obp) on the same logged data.

    python benchmarks/bandits_benchmark.py --rounds 50000 --seeds 0,1,2,3,4 --out .bench/bandits

    python benchmarks/bandits_benchmark.py --service --duration 10

(``--service``: p50/p99 latency of ``POST /v1/recommend`` at 8 concurrent clients for greedy
and the exploration policies, on a BPR model of MovieLens-100k served by ``fusionrec serve``
with the answer cache off; the async httpx clients run in this process and share the CPUs.)

Writes ``simulate.csv``, ``reward.png``, ``regret.png`` (bands: +-1 sd over seeds),
``replay.csv``, ``replay_reward.png``/``replay_regret.png``, ``ope.csv``, ``obp.json`` and
``report.json`` under ``--out`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fusionrec.bandits import ope
from fusionrec.bandits.logged import log_from_environment, target_action_dist
from fusionrec.bandits.replay import time_replay
from fusionrec.bandits.simulator import semi_synthetic, simulate
from fusionrec.bandits.study import ope_study, plot_curves, policy_for, run_policies, summary_table
from fusionrec.data import load_dataset

POLICIES = "linucb,lints,egreedy,ts,greedy,random"


def obp_agreement(env, seed: int = 0, n_rounds: int = 20000) -> dict:
    """Our five estimators vs obp's on one uniform log of the simulator (targets: greedy and softmax)."""
    try:
        from obp.ope import (
            DirectMethod,
            DoublyRobust,
            InverseProbabilityWeighting,
            ReplayMethod,
            SelfNormalizedInverseProbabilityWeighting,
        )
    except ImportError as e:
        return {"skipped": f"obp not importable: {e}"}
    rng = np.random.default_rng(seed)
    log, _ = log_from_environment(env, policy_for("random", env), n_rounds, rng)
    q_hat = ope.ridge_reward_model(log.contexts[np.arange(log.n_rounds), log.action], log.reward, log.contexts)
    out = {"n_rounds": n_rounds}
    soft = policy_for("softmax", env)  # a stochastic target: softmax on a ridge fit of 2,000 logged rounds
    first = np.arange(min(2000, n_rounds))
    soft.update(log.candidates[first, log.action[first]], log.reward[first], log.contexts[first, log.action[first]])
    for name, pol in (("greedy", policy_for("greedy", env)), ("softmax", soft)):
        ad = target_action_dist(pol, log, rng)
        kw = dict(reward=log.reward, action=log.action, pscore=log.pscore, action_dist=ad)
        theirs = {
            "ips": InverseProbabilityWeighting().estimate_policy_value(**kw),
            "snips": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw),
            "dm": DirectMethod().estimate_policy_value(action_dist=ad, estimated_rewards_by_reg_model=q_hat),
            "dr": DoublyRobust().estimate_policy_value(**kw, estimated_rewards_by_reg_model=q_hat),
        }
        if name == "greedy":
            theirs["replay"] = ReplayMethod().estimate_policy_value(reward=log.reward, action=log.action, action_dist=ad)
        ours = {e.estimator: e.value for e in ope.estimate_all(log.reward, log.action, log.pscore, ad, q_hat)}
        out[name] = {k: {"ours": ours[k], "obp": float(v), "abs_diff": abs(ours[k] - float(v))} for k, v in theirs.items()}
    out["max_abs_diff"] = max(d["abs_diff"] for n in ("greedy", "softmax") for d in out[n].values())
    return out


async def _latency_level(url: str, key: str, users: list[str], policy: str, conc: int, duration: float, k: int, seed: int):
    import asyncio

    import httpx

    rng = np.random.default_rng(seed)
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            body = {"user_id": users[int(rng.integers(len(users)))], "k": k, "policy": policy}
            t0 = time.perf_counter()
            r = await client.post("/v1/recommend", json=body)
            lat.append(time.perf_counter() - t0)
            errors += r.status_code != 200 or len(r.json()["items"]) != k

    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, limits=limits, timeout=30) as client:
        for _ in range(16):  # warm-up (and the policy's first creation)
            await client.post("/v1/recommend", json={"user_id": users[0], "k": k, "policy": policy})
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(conc)))
        wall = time.perf_counter() - t0
    a = np.asarray(lat) * 1000
    return len(a), errors, float(np.percentile(a, 50)), float(np.percentile(a, 99)), len(a) / wall


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (as benchmarks/load_test.py reads them)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_latency(out: Path, duration: float, conc: int = 8, k: int = 10) -> list[dict]:
    import asyncio
    import os
    import socket
    import subprocess
    import sys


    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from load_test import wait_ready

    from fusionrec.bandits.simulator import bpr_params
    from fusionrec.models.classic.bpr import BPR
    from fusionrec.serving.auth import KeyStore

    ds = load_dataset("ml-100k")
    model_dir = BPR(**bpr_params(64, 30)).fit(ds, seed=0).save(out / "bpr-model")
    db = f"sqlite:///{(out / 'serve.db').resolve()}"
    ks = KeyStore(db)
    key, _ = ks.create("bandit-latency")
    ks.engine.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, FUSIONREC_CACHE_SIZE="0")
    cmd = [sys.executable, "-m", "fusionrec.cli.main", "serve", "--model-dir", str(model_dir), "--port", str(port), "--events", db, "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_ready(url, server)
        users = [str(u) for u in ds.users.ids[:500]]
        print(f"{'policy':>8} {'clients':>8} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'CPU ms/req':>10} {'load1':>6}")
        for policy in ("greedy", "linucb", "lints", "egreedy", "ts", "random"):
            c0 = _cpu_s(server.pid)
            n, err, p50, p99, rps = asyncio.run(_latency_level(url, key, users, policy, conc, duration, k, 0))
            cpu = (_cpu_s(server.pid) - c0) / max(n, 1) * 1000
            row = {"policy": policy, "clients": conc, "requests": n, "errors": err, "p50_ms": p50, "p99_ms": p99, "rps": rps, "server_cpu_ms_per_request": cpu, "load1": os.getloadavg()[0]}
            rows.append(row)
            print(f"{policy:>8} {conc:>8} {n:>9} {err:>7} {p50:>8.2f} {p99:>8.2f} {rps:>8.1f} {cpu:>10.2f} {row['load1']:>6.2f}", flush=True)
    finally:
        server.terminate()
        server.wait(30)
    (out / "service_latency.json").write_text(json.dumps(rows, indent=2))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=50000)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--policies", default=POLICIES)
    ap.add_argument("--ope-rounds", type=int, default=10000)
    ap.add_argument("--ope-seeds", type=int, default=20)
    ap.add_argument("--skip-replay", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(".bench/bandits"))
    ap.add_argument("--service", action="store_true", help="only the service latency comparison")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per policy (--service)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.service:
        service_latency(a.out, a.duration)
        return
    seeds = [int(s) for s in a.seeds.split(",")]
    specs = a.policies.split(",")
    report: dict = {"rounds": a.rounds, "seeds": seeds}
    ds = load_dataset("ml-100k")

    t0 = time.perf_counter()
    env = semi_synthetic(ds, seed=0)
    report["environment"] = env.info
    print("environment:", json.dumps(env.info), f"({time.perf_counter() - t0:.1f}s)", flush=True)

    t0 = time.perf_counter()
    res = run_policies(env, specs, a.rounds, seeds, progress=lambda s, sd, r: print(f"  {s} seed {sd}: {r.expected.mean():.4f}", flush=True))
    table = summary_table(res)
    table.to_csv(a.out / "simulate.csv", index=False)
    plot_curves(res, a.out, title=f"ml-100k semi-synthetic, {a.rounds} rounds, {len(seeds)} seeds")
    report["simulate"] = table.to_dict(orient="records")
    report["simulate_seconds"] = time.perf_counter() - t0
    print(table.to_string(index=False), flush=True)

    if not a.skip_replay:
        t0 = time.perf_counter()
        renv = time_replay(ds, seed=0)
        report["replay_environment"] = renv.info
        rres = run_policies(renv, specs, len(renv.order), seeds)
        rtable = summary_table(rres)
        rtable.to_csv(a.out / "replay.csv", index=False)
        paths = plot_curves(rres, a.out / "replay", title=f"ml-100k time-ordered replay, {len(renv.order)} rounds")
        for p in paths:
            p.rename(a.out / f"replay_{p.name}")
        report["replay"] = rtable.to_dict(orient="records")
        print("time-ordered replay:", json.dumps(renv.info), f"({time.perf_counter() - t0:.1f}s)")
        print(rtable.to_string(index=False), flush=True)

    t0 = time.perf_counter()
    lin = policy_for("linucb", env)
    simulate(env, lin, 20000, seed=1000)  # a learned target, frozen from here on
    targets = {"greedy": policy_for("greedy", env), "linucb(20k rounds)": lin}
    tabs = []
    for logger in ("random", "egreedy:estimator=arm:epsilon=0.5"):
        lg = policy_for(logger, env)
        st = ope_study(env, targets, lg, a.ope_rounds, range(a.ope_seeds))
        st.table.insert(0, "logger", logger)
        tabs.append(st.table)
    import pandas as pd

    ope_table = pd.concat(tabs, ignore_index=True)
    ope_table.to_csv(a.out / "ope.csv", index=False)
    report["ope"] = ope_table.to_dict(orient="records")
    print(f"OPE ({a.ope_rounds} logged rounds x {a.ope_seeds} seeds, {time.perf_counter() - t0:.1f}s)")
    print(ope_table.to_string(index=False), flush=True)

    agree = obp_agreement(env)
    (a.out / "obp.json").write_text(json.dumps(agree, indent=2))
    report["obp"] = agree
    print("obp agreement:", json.dumps(agree, indent=1))
    (a.out / "report.json").write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
