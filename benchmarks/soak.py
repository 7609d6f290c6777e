"""Bounded soak run of the recommendation service on 127.0.0.1: mixed traffic for a fixed time.

Starts ``fusionrec serve`` with an EASE model fitted on MovieLens-100k (or ``--model-dir``)
and sends, from ``--clients`` concurrent async clients, a seeded mix of requests for
``--minutes`` minutes (or until ``--max-requests``):

  recommend (plain, with a genre filter, with MMR diversity, with an exploration policy,
  with an ad-hoc history for an unknown user), similar items, user history, explanations,
  feedback events (which change the next answers), /healthz and /metrics, and every
  ``--reload-every`` seconds an admin reload of the same folder (a zero-downtime swap).

Every 10 s it samples the server's resident memory (VmRSS). At the end it prints the request
counts by kind, errors (any unexpected status or a transport error), p50/p99 latency, the RSS
series and the RSS slope over the second half of the run (MiB per minute: a flat service
stays near 0), and exits non-zero when there were errors. Traffic goes to 127.0.0.1 only; the
loop is bounded in time and requests and stops by itself.

    python benchmarks/soak.py --minutes 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import _free_port, _mem, prepare_ease, wait_ready  # noqa: E402

GENRES = ["Comedy", "Drama", "Action", "Thriller", "Romance"]


def _start_server(model_dir: Path, workdir: Path) -> tuple[subprocess.Popen, str, str, str]:
    from fusionrec.serving.auth import KeyStore

    db = f"sqlite:///{workdir / 'soak.db'}"
    ks = KeyStore(db)
    key, _ = ks.create("soak")
    admin, _ = ks.create("soak-admin", scopes=("read", "admin"))
    ks.engine.dispose()
    port = _free_port()
    cmd = [sys.executable, "-m", "fusionrec.cli.main", "serve", "--model-dir", str(model_dir),
           "--port", str(port), "--events", db, "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=dict(os.environ))
    return server, f"http://127.0.0.1:{port}", key, admin


def _request(rng: random.Random, users: list[str], items: list[str]) -> tuple[str, str, str, dict | None, tuple[int, ...]]:
    """(kind, method, path, json body, accepted statuses) of one seeded request."""
    u, i = rng.choice(users), rng.choice(items)
    r = rng.random()
    if r < 0.35:
        return "recommend", "POST", "/v1/recommend", {"user_id": u, "k": 10}, (200,)
    if r < 0.42:
        return "recommend_genre", "POST", "/v1/recommend", {"user_id": u, "k": 10, "filters": {"genre": rng.choice(GENRES)}}, (200,)
    if r < 0.47:
        return "recommend_mmr", "POST", "/v1/recommend", {"user_id": u, "k": 20, "diversity": 0.3}, (200,)
    if r < 0.52:
        return "recommend_policy", "POST", "/v1/recommend", {"user_id": u, "k": 10, "policy": rng.choice(["egreedy", "linucb", "ts"])}, (200,)
    if r < 0.56:
        hist = rng.sample(items, 5)
        return "recommend_history", "POST", "/v1/recommend", {"user_id": f"new{rng.randrange(10**6)}", "k": 10, "history": hist}, (200,)
    if r < 0.66:
        return "similar", "GET", f"/v1/items/{i}/similar?k=10", None, (200,)
    if r < 0.72:
        return "history", "GET", f"/v1/users/{u}/history", None, (200,)
    if r < 0.76:
        return "explain", "GET", f"/v1/explain?user_id={u}&item_id={i}", None, (200,)
    if r < 0.93:
        ev = rng.choice(["view", "click", "rate", "purchase"])
        body = {"user_id": u, "item_id": i, "event": ev}
        if ev == "rate":
            body["value"] = float(rng.randint(1, 5))
        return "feedback", "POST", "/v1/feedback", body, (201,)
    if r < 0.98:
        return "healthz", "GET", "/healthz", None, (200,)
    return "metrics", "GET", "/metrics", None, (200,)


async def soak(url: str, key: str, admin: str, model_dir: Path, users: list[str], items: list[str], args, server_pid: int) -> dict:
    import httpx

    deadline = time.perf_counter() + args.minutes * 60
    lat: dict[str, list[float]] = defaultdict(list)
    counts: Counter = Counter()
    errors: list[str] = []
    rss: list[tuple[float, float]] = []
    sent = 0
    t_start = time.perf_counter()

    async def client(cid: int) -> None:
        nonlocal sent
        rng = random.Random(args.seed * 1000 + cid)
        async with httpx.AsyncClient(base_url=url, timeout=30, headers={"X-API-Key": key}) as c:
            while time.perf_counter() < deadline and sent < args.max_requests:
                sent += 1
                kind, method, path, body, ok = _request(rng, users, items)
                t0 = time.perf_counter()
                try:
                    resp = await c.request(method, path, json=body)
                    status = resp.status_code
                except httpx.HTTPError as e:
                    status = -1
                    errors.append(f"{kind}: {type(e).__name__}: {e}")
                lat[kind].append((time.perf_counter() - t0) * 1000)
                counts[kind] += 1
                if status not in ok and status != -1:
                    errors.append(f"{kind} {method} {path}: HTTP {status} {resp.text[:200]}")

    async def sampler() -> None:
        while time.perf_counter() < deadline and sent < args.max_requests:
            rss.append((time.perf_counter() - t_start, _mem(server_pid)[0]))
            await asyncio.sleep(10)
        rss.append((time.perf_counter() - t_start, _mem(server_pid)[0]))

    async def reloader() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120, headers={"X-API-Key": admin}) as c:
            while True:
                await asyncio.sleep(args.reload_every)
                if time.perf_counter() >= deadline or sent >= args.max_requests:
                    return
                t0 = time.perf_counter()
                resp = await c.post("/v1/admin/reload")
                lat["reload"].append((time.perf_counter() - t0) * 1000)
                counts["reload"] += 1
                if resp.status_code != 200:
                    errors.append(f"reload: HTTP {resp.status_code} {resp.text[:200]}")

    tasks = [client(i) for i in range(args.clients)] + [sampler()]
    if args.reload_every > 0:
        tasks.append(reloader())
    await asyncio.gather(*tasks)
    return {"lat": lat, "counts": counts, "errors": errors, "rss": rss, "seconds": time.perf_counter() - t_start}


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS (MiB) per minute over the second half of the samples."""
    half = points[len(points) // 2 :]
    if len(half) < 2:
        return 0.0
    xs = [t / 60 for t, _ in half]
    ys = [m for _, m in half]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--max-requests", type=int, default=5_000_000, help="upper bound on requests")
    p.add_argument("--reload-every", type=float, default=120.0, help="seconds between admin reloads (0: none)")
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    args = p.parse_args()

    from fusionrec.models.base import load_model

    with tempfile.TemporaryDirectory(prefix="fusionrec-soak-") as tmp:
        workdir = Path(tmp)
        model_dir, users = prepare_ease(workdir, args.model_dir)
        items = load_model(model_dir).items_.ids.tolist()
        server, url, key, admin = _start_server(model_dir, workdir)
        try:
            wait_ready(url, server)
            print(f"soak: {args.minutes:g} min, {args.clients} clients, reload every {args.reload_every:g} s, {url}", flush=True)
            res = asyncio.run(soak(url, key, admin, model_dir, users, items, args, server.pid))
        finally:
            server.terminate()
            server.wait(30)

    total = sum(res["counts"].values())
    print(f"\n{total} requests in {res['seconds']:.0f} s ({total / res['seconds']:.1f}/s), load average {os.getloadavg()[0]:.2f}")
    print(f"{'kind':>18} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in sorted(res["counts"]):
        xs = sorted(res["lat"][kind])
        p50 = xs[len(xs) // 2]
        p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
        print(f"{kind:>18} {res['counts'][kind]:>9} {p50:>8.2f} {p99:>8.2f}")
    series = res["rss"]
    print("RSS MiB at minute: " + ", ".join(f"{t / 60:.1f}: {m:.0f}" for t, m in series[:: max(1, len(series) // 12)]))
    rss_vals = [m for _, m in series]
    slope = _slope(series)
    print(f"RSS first {rss_vals[0]:.0f}, last {rss_vals[-1]:.0f}, max {max(rss_vals):.0f} MiB; slope over the second half {slope:+.2f} MiB/min")
    print(f"errors: {len(res['errors'])}")
    for e in res["errors"][:20]:
        print("  " + e)
    if args.json:
        args.json.write_text(json.dumps({
            "requests": dict(res["counts"]), "seconds": res["seconds"], "errors": res["errors"][:100],
            "rss_mib": series, "rss_slope_mib_per_min": slope,
        }, indent=2))
    raise SystemExit(1 if res["errors"] else 0)


if __name__ == "__main__":
    main()
