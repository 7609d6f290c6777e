"""Load test of the recommendation service against 127.0.0.1 (bounded in time and requests).

Scenarios:
  ease       an EASE model fitted on MovieLens-100k (or --model-dir), exhaustive scoring
  bpr        BPR fitted on MovieLens-100k, served exactly and with ``--ann`` (HNSW candidates
             re-ranked exactly); also reports recall@10 of the ANN answers vs exact ones
  synthetic  a 1,000,000-item, 64-d StaticEmbedding model (written directly, not trained)
             served through the faiss IVF index; also reports recall@10 of the ANN pipeline and
             of raw ANN search vs exact search, and of ANN similar items vs exact cosine
  scale      bpr + synthetic: the "serving at scale" table (docs/scale.md)

Each scenario runs once per ``--workers`` value (e.g. ``1,2``: uvicorn worker processes
sharing the model memory-mapped); after each server's levels the script prints every worker's
RSS and PSS (``/proc/PID/smaps_rollup``: PSS charges a shared page 1/n to each of the n
processes mapping it, so the sum of PSS is what the server really holds). ``--out DIR`` writes
``load_test.json`` and ``load_test.md``.

For each concurrency level (1, 8, 64 by default) and each client (--client):

  wrk     the C load generator (Debian package ``wrk``) with one thread and a Lua script that
          POSTs /v1/recommend for random users, for --duration seconds; it takes little CPU
          from the server, so its figures are the service's own
  python  async httpx clients in this process, for --duration seconds or --max-requests
          requests; they also check every answer has k items, but share the CPUs with the server

and the script prints p50/p99 latency, requests/second, errors (non-2xx, socket errors,
timeouts, short answers), the server's CPU time per request (user+system, from /proc: the
figure that does not depend on other load on the machine), the 1-minute load average, and
the server's memory (RSS, peak RSS of the first worker). The server is ``fusionrec serve``;
the answer cache is off by default so every request is scored (--cache to turn it on).
``--pin`` puts the server on CPU 0 and the clients on CPU 1.

    python benchmarks/load_test.py --scenario both
    python benchmarks/load_test.py --scenario scale --workers 1,2 --client wrk --duration 10 \
        --workdir /tmp/fusionrec-load --out benchmarks/results
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _script_setup import int_list, script_parser

# fusionrec.testing.servers is imported where it is used: importing it loads torch, and
# ``--help`` (here and in soak.py, which imports this module) should not wait for that.


def _free_port() -> int:
    """A free port on 127.0.0.1 (soak.py's server)."""
    from fusionrec.testing.servers import free_port

    return free_port()


def wait_ready(url: str, server: subprocess.Popen, limit_s: float = 300.0) -> None:
    """Until ``url``/readyz answers 200 (the servers of soak.py and bandits_benchmark.py);
    ``ServerStartError`` when the server dies or is not ready within ``limit_s``."""
    from fusionrec.testing.servers import wait_ready as wait

    wait(url, server, limit_s=limit_s)


def _mem(pid: int) -> tuple[float, float]:
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


def _smaps(pid: int) -> dict[str, float]:
    """RSS, PSS and their shared/private parts in MiB (``/proc/PID/smaps_rollup``)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty"):
            out[key.lower()] = int(rest.split()[0]) / 1024
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_WRK_LUA = """
local users = {%(users)s}
local key = %(key)s
local k = %(k)d
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = key
math.randomseed(%(seed)d)
request = function()
  local u = users[math.random(1, #users)]
  return wrk.format(nil, "/v1/recommend", nil, '{"user_id":' .. u .. ',"k":' .. k .. '}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%.1f,"p99_us":%%.1f,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def _wrk_script(path: Path, users: list[str], key: str, k: int, seed: int) -> Path:
    """The Lua script wrk runs: random users from ``users``, results as one JSON line."""
    lua_users = ",".join(json.dumps(json.dumps(str(u))) for u in users)
    path.write_text(_WRK_LUA % {"users": lua_users, "key": json.dumps(key), "k": k, "seed": seed})
    return path


def _wrk_level(url: str, script: Path, conc: int, duration: float, pin: bool):
    """One wrk run; (requests, errors, p50 ms, p99 ms, req/s)."""
    cmd = [
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    if pin:
        cmd = ["taskset", "-c", "1", *cmd]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = next((x for x in run.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:  # e.g. a Lua error: wrk then runs without the script
        raise SystemExit(f"wrk printed no result:\n{run.stdout}\n{run.stderr}")
    r = json.loads(line[len("WRKJSON ") :])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    rps = r["requests"] / (r["duration_us"] / 1e6)
    return r["requests"], errors, r["p50_us"] / 1000, r["p99_us"] / 1000, rps


def prepare_ease(workdir: Path, model_dir: Path | None) -> tuple[Path, list[str]]:
    from fusionrec.models.base import load_model

    if model_dir is None:
        from fusionrec.data import load_dataset
        from fusionrec.models.classic.ease import EASE
        from fusionrec.serving.catalog import write_catalog

        ds = load_dataset("ml-100k")
        t0 = time.perf_counter()
        model = EASE().fit(ds)
        print(f"fitted EASE on {ds!r} in {time.perf_counter() - t0:.1f}s")
        model_dir = model.save(workdir / "ease")
        write_catalog(ds, model_dir)
    users = load_model(model_dir).users_.ids.tolist()
    return model_dir, users


def prepare_bpr(workdir: Path, epochs: int, nprobe: int, candidates: int) -> tuple[Path, list[str]]:
    """BPR fitted on MovieLens-100k (reused from ``workdir``), and recall@10 of its ANN answers
    (HNSW at efSearch ``nprobe``, ``candidates`` re-ranked exactly) vs exact answers."""
    from fusionrec.models.base import load_model
    from fusionrec.models.recommend import recommend_batch
    from fusionrec.serving.engine import ModelState

    d = workdir / f"bpr-ml100k-{epochs}"
    if not (d / "config.json").exists():
        from fusionrec.data import load_dataset
        from fusionrec.models.classic.bpr import BPR
        from fusionrec.serving.catalog import write_catalog

        ds = load_dataset("ml-100k")
        t0 = time.perf_counter()
        model = BPR(epochs=epochs, embedding_dim=64).fit(ds, seed=0)
        print(f"fitted BPR ({epochs} epochs) on {ds!r} in {time.perf_counter() - t0:.1f}s")
        model.save(d)
        write_catalog(ds, d)
    model = load_model(d)
    state = ModelState.load(d, ann=True, ann_kind="hnsw", ann_nprobe=nprobe)
    users = model.users_.ids.tolist()
    sample = [users[i] for i in np.random.default_rng(1).choice(len(users), 200, replace=False)]
    exact = recommend_batch(model, sample, 10)
    got = recommend_batch(model, sample, 10, retriever=state.retriever, retrieve_n=candidates)
    hits = sum(len(set(a.items.tolist()) & set(b.items.tolist())) for a, b in zip(exact, got, strict=True))
    print(
        f"BPR ml-100k: HNSW (efSearch {nprobe}, {candidates} candidates) recall@10 vs exact "
        f"(200 users): {hits / 2000:.3f}"
    )
    return d, users


def prepare_synthetic(
    workdir: Path, n_items: int, dim: int, n_users: int, nprobe: int, candidates: int
) -> tuple[Path, list[str]]:
    from fusionrec.models.base import load_model
    from fusionrec.models.classic.static_embedding import StaticEmbedding
    from fusionrec.serving.engine import ModelState, recommend, similar

    t0 = time.perf_counter()
    d = workdir / f"synthetic-{n_items}-{dim}-{n_users}"
    if (d / "config.json").exists():
        model = load_model(d)
    else:
        model = StaticEmbedding.synthetic(
            n_users=n_users, n_items=n_items, dim=dim, n_clusters=1024, seed=0
        )
        model.save(d)
    print(
        f"synthetic model ({n_users} users, {n_items} items, {dim}-d) ready in {time.perf_counter() - t0:.1f}s"
    )
    t0 = time.perf_counter()
    state = ModelState.load(d, ann_threshold=50_000, ann_kind="ivf", ann_nprobe=nprobe)
    print(
        f"{state.ann.kind} index (nlist={state.ann.index.nlist}, nprobe={nprobe}) built, or loaded from ann.faiss, in {time.perf_counter() - t0:.1f}s"
    )
    rng = np.random.default_rng(1)
    sample = rng.choice(n_users, size=200, replace=False)
    exact_idx, _ = model.recommend_indices(sample, 10)
    raw_hits = pipe_hits = 0
    t0 = time.perf_counter()
    for row, u in enumerate(sample):
        truth = set(exact_idx[row].tolist())
        got = recommend(state, f"u{u}", 10, ann_candidates=candidates)
        pipe_hits += len(truth & set(got.items.tolist()))
        raw, _ = state.ann.search(model.U_[u], 10 + len(model.seen_[u].indices))
        raw = [i for i in raw[0].tolist() if i not in set(model.seen_[u].indices.tolist())][:10]
        raw_hits += len(truth & set(raw))
    per = (time.perf_counter() - t0) / len(sample) * 1000
    print(
        f"recall@10 vs exact search (200 users): ANN+re-rank pipeline {pipe_hits / 2000:.3f}, raw ANN {raw_hits / 2000:.3f}; in-process {per:.2f} ms/user"
    )
    # similar items (GET /v1/items/{id}/similar): ANN candidates re-ranked by cosine vs exact cosine
    v = model.V_
    vn = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    items = rng.choice(n_items, size=100, replace=False)
    sims = vn[items] @ vn.T
    sims[np.arange(len(items)), items] = -np.inf
    truth = np.argpartition(-sims, 10, axis=1)[:, :10]
    del sims
    hits = 0
    t0 = time.perf_counter()
    for row, i in enumerate(items):
        got, _, _ = similar(state, int(i), 10, candidates)
        hits += len(set(truth[row].tolist()) & set(got.tolist()))
    per = (time.perf_counter() - t0) / len(items) * 1000
    print(
        f"similar-items recall@10 vs exact cosine (100 items): {hits / 1000:.3f}; in-process {per:.2f} ms/item"
    )
    return d, [f"u{u}" for u in range(n_users)]


async def _level(
    url: str,
    key: str,
    users: list[str],
    conc: int,
    duration: float,
    max_requests: int,
    k: int,
    seed: int,
):
    import httpx

    rng = np.random.default_rng(seed)
    order = [users[i] for i in rng.integers(0, len(users), max_requests)]
    lat: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + duration

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal counter, errors
        while counter < max_requests and time.perf_counter() < deadline:
            u = order[counter]
            counter += 1
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/recommend", json={"user_id": u, "k": k})
                ok = r.status_code == 200 and len(r.json()["items"]) == k
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t0)
            errors += not ok

    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": key}, limits=limits, timeout=30
    ) as client:
        for _ in range(min(conc, 16)):  # warm-up
            await client.post("/v1/recommend", json={"user_id": users[0], "k": k})
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(conc)))
        wall = time.perf_counter() - t0
    a = np.asarray(lat) * 1000
    return len(a), errors, float(np.percentile(a, 50)), float(np.percentile(a, 99)), len(a) / wall


def run_scenario(
    name: str,
    model_dir: Path,
    users: list[str],
    args,
    workdir: Path,
    workers: int = 1,
    serve_args: tuple[str, ...] = (),
    nprobe: int | None = None,
) -> dict:
    """Serve ``model_dir`` with ``workers`` processes, run every concurrency level and client;
    returns the rows and each worker's memory (also printed)."""
    from fusionrec.serving.auth import KeyStore
    from fusionrec.testing.servers import start_server

    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    db = f"sqlite:///{workdir / f'{slug}.db'}"
    ks = KeyStore(db)
    key, _ = ks.create("load-test")
    ks.engine.dispose()
    env = dict(
        os.environ,
        FUSIONREC_CACHE_SIZE=str(10_000 if args.cache else 0),
        FUSIONREC_ANN_NPROBE=str(args.nprobe if nprobe is None else nprobe),
        FUSIONREC_ANN_CANDIDATES=str(args.candidates),
    )
    if args.pin:
        os.sched_setaffinity(0, {1})  # the python client
    log = workdir / f"server-{slug}-{workers}.log"
    label = f"{name}, {workers} worker{'s' if workers > 1 else ''}"
    result: dict = {"scenario": name, "workers": workers, "rows": [], "memory": []}
    with start_server(
        model_dir, events=db, log=log, workers=workers, serve_args=serve_args, env=env,
        prefix=("taskset", "-c", "0") if args.pin else (),
    ) as server:  # fmt: skip
        url = server.url
        pids = server.serving_pids()
        rss = sum(_mem(p)[0] for p in pids)
        print(
            f"\n[{label}] server ready in {time.perf_counter() - server.started_at:.1f}s, RSS {rss:.0f} MiB "
            f"(sum over {len(pids)} worker{'s' if len(pids) > 1 else ''})"
        )
        print(
            f"{'client':>7} {'clients':>8} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'req/s':>8} {'CPU ms/req':>10} {'load1':>6} {'RSS MiB':>8} {'peak MiB':>9}"
        )
        clients = ["wrk", "python"] if args.client == "both" else [args.client]
        script = (
            _wrk_script(workdir / "post.lua", users, key, args.k, 1) if "wrk" in clients else None
        )
        for conc in args.concurrency:
            for client in clients:
                if client == "wrk":
                    _wrk_level(url, script, conc, 1, args.pin)  # warm-up, not counted
                    c0 = sum(_cpu_s(p) for p in pids)
                    n, err, p50, p99, rps = _wrk_level(url, script, conc, args.duration, args.pin)
                else:
                    c0 = sum(_cpu_s(p) for p in pids)
                    n, err, p50, p99, rps = asyncio.run(
                        _level(
                            url, key, users, conc, args.duration, args.max_requests, args.k, conc
                        )
                    )
                cpu_ms = (sum(_cpu_s(p) for p in pids) - c0) / max(n, 1) * 1000
                rss = sum(_mem(p)[0] for p in pids)
                hwm = max(_mem(p)[1] for p in pids)
                load1 = os.getloadavg()[0]
                print(
                    f"{client:>7} {conc:>8} {n:>9} {err:>7} {p50:>8.2f} {p99:>8.2f} {rps:>8.1f} "
                    f"{cpu_ms:>10.2f} {load1:>6.2f} {rss:>8.0f} {hwm:>9.0f}",
                    flush=True,
                )
                result["rows"].append(
                    dict(
                        client=client, clients=conc, requests=n, errors=err, p50_ms=p50,
                        p99_ms=p99, rps=rps, cpu_ms_per_req=cpu_ms, load1=load1,
                    )
                )  # fmt: skip
        for pid in pids:
            mem = {"pid": pid, **_smaps(pid)}
            result["memory"].append(mem)
            print(
                f"  worker {pid}: RSS {mem['rss']:.0f} MiB, PSS {mem['pss']:.0f} MiB "
                f"(shared {mem['shared_clean'] + mem['shared_dirty']:.0f}, "
                f"private {mem['private_clean'] + mem['private_dirty']:.0f})"
            )
        total = sum(m["pss"] for m in result["memory"])
        print(f"  sum of PSS over the workers: {total:.0f} MiB")
    return result


def write_results(results: list[dict], out: Path, notes: list[str]) -> None:
    """``load_test.json`` (everything) and ``load_test.md`` (the table) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "load_test.json").write_text(json.dumps({"notes": notes, "runs": results}, indent=2))
    lines = [
        "| scenario | workers | clients | client | requests | errors | p50 ms | p99 ms | req/s | CPU ms/req | load1 |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for row in r["rows"]:
            lines.append(
                f"| {r['scenario']} | {r['workers']} | {row['clients']} | {row['client']} | "
                f"{row['requests']} | {row['errors']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                f"{row['rps']:.0f} | {row['cpu_ms_per_req']:.2f} | {row['load1']:.1f} |"
            )
    lines += ["", "| scenario | workers | worker | RSS MiB | PSS MiB | shared MiB | private MiB |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for i, m in enumerate(r["memory"]):
            lines.append(
                f"| {r['scenario']} | {r['workers']} | {i + 1} | {m['rss']:.0f} | {m['pss']:.0f} | "
                f"{m['shared_clean'] + m['shared_dirty']:.0f} | {m['private_clean'] + m['private_dirty']:.0f} |"
            )
    (out / "load_test.md").write_text("\n".join([*notes, "", *lines, ""]))
    print(f"wrote {out / 'load_test.json'} and {out / 'load_test.md'}")


def main() -> None:
    p = script_parser(__doc__)
    p.add_argument(
        "--scenario", choices=["ease", "bpr", "synthetic", "both", "scale"], default="both"
    )
    p.add_argument(
        "--workers",
        type=int_list,
        default=[1],
        help="uvicorn worker counts to serve each scenario with, e.g. 1,2",
    )
    p.add_argument("--bpr-epochs", type=int, default=20)
    p.add_argument("--ef-search", type=int, default=64, help="HNSW efSearch of the bpr --ann run")
    p.add_argument("--out", type=Path, default=None, help="write load_test.json and .md here")
    p.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="saved model for the ease scenario (default: fit EASE on ml-100k)",
    )
    p.add_argument(
        "--concurrency", type=int_list, default=[1, 8, 64]
    )
    p.add_argument(
        "--duration", type=float, default=8.0, help="seconds per concurrency level (upper bound)"
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=2000,
        help="requests per concurrency level (upper bound)",
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--n-items", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--n-users", type=int, default=10_000)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--cache", action="store_true", help="leave the answer cache on")
    p.add_argument(
        "--client",
        choices=["wrk", "python", "both"],
        default="both",
        help="load generator: wrk (needs the wrk binary), the python httpx client, or both",
    )
    p.add_argument("--pin", action="store_true", help="server on CPU 0, clients on CPU 1")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep models here (reused when present) instead of a temp folder",
    )
    args = p.parse_args()
    if args.client in ("wrk", "both") and shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `apt-get install -y wrk`, or use --client python")
    if args.pin and (os.cpu_count() or 1) < 2:
        raise SystemExit("--pin needs at least 2 CPUs")
    load0 = os.getloadavg()
    print(f"load: {load0}, cpus: {os.cpu_count()}")
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fusionrec-load-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        runs = []  # (name, folder, users, serve args, nprobe)
        if args.scenario in ("ease", "both"):
            d, users = prepare_ease(workdir, args.model_dir)
            runs.append(("ease ml-100k", d, users, (), None))
        if args.scenario in ("bpr", "scale"):
            d, users = prepare_bpr(workdir, args.bpr_epochs, args.ef_search, args.candidates)
            runs.append(("bpr ml-100k exact", d, users, (), None))
            runs.append(
                ("bpr ml-100k ANN", d, users, ("--ann", "--ann-kind", "hnsw"), args.ef_search)
            )
        if args.scenario in ("synthetic", "both", "scale"):
            d, users = prepare_synthetic(
                workdir, args.n_items, args.dim, args.n_users, args.nprobe, args.candidates
            )
            runs.append((f"static_embedding {args.n_items} items ANN", d, users, (), None))
        from fusionrec.testing.servers import ServerStartError

        try:
            for name, d, users, serve_args, nprobe in runs:
                for w in args.workers:
                    results.append(run_scenario(name, d, users, args, workdir, w, serve_args, nprobe))
        except ServerStartError as e:  # the message and the log's tail, without a traceback
            raise SystemExit(str(e)) from None
    load1 = os.getloadavg()
    print(f"load after: {load1}")
    if args.out is not None:
        notes = [
            f"`python benchmarks/load_test.py {' '.join(sys.argv[1:])}`",
            "",
            f"{os.cpu_count()} CPUs; load average {load0[0]:.1f} before, {load1[0]:.1f} after "
            "(other jobs share the machine: compare rows of one run, not with other runs).",
        ]
        write_results(results, args.out, notes)


if __name__ == "__main__":
    main()
