"""The data path at scale: load / filter / split / save seconds and peak RSS at 1M, 5M, 25M rows.

    python benchmarks/scale_data.py --sizes 1m,5m            # both formats, all engines
    python benchmarks/scale_data.py --sizes 25m --engines fast

Synthetic power-law interactions in MovieLens-25M's shape (``fusionrec.data.synthetic.
make_power_law``: 25M rows = 162k users x 59k items) are written once as CSV and Parquet under
``--workdir``. Each measurement is a fresh child process, so its peak RSS (``ru_maxrss``) is
that measurement's alone:

* ``fast``   ``load_table`` through pyarrow (the default engine), then the pipeline:
  5-core filter, random 80/10/10 split, ``Dataset.save`` of the train part, ``Dataset.load``;
* ``strict`` ``load_table(engine="strict")`` (numpy byte checks + pandas, line-accurate errors);
* ``pandas`` / ``polars`` / ``duckdb``: the bare reader plus id factorisation, no checks (what a
  replacement engine would start from), when the package is installed.

Not a timed test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"1m": 1_000_000, "5m": 5_000_000, "25m": 25_000_000}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_generate(n: int, workdir: Path) -> dict:
    from fusionrec.data.bulk import write_interactions
    from fusionrec.data.synthetic import make_power_law

    t0 = time.perf_counter()
    ds = make_power_law(n, seed=0)
    gen = time.perf_counter() - t0
    out = {"users": ds.n_users, "items": ds.n_items, "interactions": ds.n_interactions, "generate_s": gen}
    for fmt in ("csv", "parquet"):
        t0 = time.perf_counter()
        p = write_interactions(ds, workdir / f"inter-{n}.{fmt}")
        out[f"write_{fmt}_s"] = time.perf_counter() - t0
        out[f"{fmt}_mib"] = p.stat().st_size / 2**20
    return out


def _child_measure(engine: str, path: Path, workdir: Path) -> dict:
    __import__({"fast": "fusionrec.data", "strict": "fusionrec.data"}.get(engine, engine))  # not timed
    if engine in ("fast", "strict", "pandas"):
        import pyarrow.parquet  # noqa: F401 - pandas' parquet reader, imported outside the timing
    t0 = time.perf_counter()
    out: dict[str, float | int | str] = {}
    if engine in ("fast", "strict"):
        from fusionrec.data import Dataset, filter_kcore, load_table, split

        ds = load_table(path, engine=engine)  # type: ignore[arg-type]
        out["load_s"] = time.perf_counter() - t0
        out["rows"] = ds.n_interactions
        out["load_rss_mib"] = _rss_mib()
        if engine == "fast":
            t = time.perf_counter()
            core, _ = filter_kcore(ds, 5, 5)
            out["kcore_s"] = time.perf_counter() - t
            t = time.perf_counter()
            sp = split(core, "rs", seed=0)
            out["split_s"] = time.perf_counter() - t
            del ds, core
            t = time.perf_counter()
            saved = sp.train.save(Path(tempfile.mkdtemp(dir=workdir)) / "train")
            out["save_s"] = time.perf_counter() - t
            t = time.perf_counter()
            back = Dataset.load(saved)
            out["reload_s"] = time.perf_counter() - t
            out["train_rows"] = back.n_interactions
    elif engine == "pandas":
        import pandas as pd

        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"user_id": str, "item_id": str})
        pd.factorize(df["user_id"])
        pd.factorize(df["item_id"])
        out["load_s"] = time.perf_counter() - t0
        out["rows"] = len(df)
    elif engine == "polars":
        import polars as pl

        df = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
        df = df.with_columns(pl.col("user_id").cast(pl.Categorical).to_physical(), pl.col("item_id").cast(pl.Categorical).to_physical())
        out["load_s"] = time.perf_counter() - t0
        out["rows"] = df.height
    elif engine == "duckdb":
        import duckdb

        src = f"read_parquet('{path}')" if path.suffix == ".parquet" else f"read_csv('{path}', types={{'user_id': 'VARCHAR', 'item_id': 'VARCHAR'}})"
        con = duckdb.connect()
        con.execute(f"CREATE TABLE t AS SELECT * FROM {src}")
        arr = con.execute("SELECT dense_rank() OVER (ORDER BY user_id), dense_rank() OVER (ORDER BY item_id), rating, timestamp FROM t").fetchnumpy()
        out["load_s"] = time.perf_counter() - t0
        out["rows"] = len(arr["rating"])
    out["peak_rss_mib"] = _rss_mib()
    return out


def _run_child(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _available(engine: str) -> bool:
    if engine in ("fast", "strict", "pandas"):
        return True
    try:
        __import__(engine)
    except ImportError:
        return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,5m", help="comma list of 1m, 5m, 25m")
    ap.add_argument("--engines", default="fast,strict,pandas,polars,duckdb")
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--strict-max", default="5m", help="largest size the strict engine runs at")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fusionrec-scale")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        res = _child_generate(int(rest[0]), Path(rest[1])) if kind == "generate" else _child_measure(kind, Path(rest[0]), Path(rest[1]))
        print(json.dumps(res))
        return 0
    a.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    engines = [e for e in a.engines.split(",") if e]
    for size in a.sizes.split(","):
        n = SIZES[size]
        have = all((a.workdir / f"inter-{n}.{f}").exists() for f in ("csv", "parquet"))
        gen = {} if have else _run_child(["generate", str(n), str(a.workdir)])
        if gen:
            print(f"{size}: generated {gen}", flush=True)
        for fmt in a.formats.split(","):
            path = a.workdir / f"inter-{n}.{fmt}"
            for eng in engines:
                if not _available(eng):
                    print(f"{size} {fmt} {eng}: not installed", flush=True)
                    continue
                if eng == "strict" and n > SIZES[a.strict_max]:
                    continue
                r = {"size": size, "format": fmt, "engine": eng, **_run_child([eng, str(path), str(a.workdir)])}
                rows.append(r)
                print(json.dumps(r), flush=True)
    cols = ["size", "format", "engine", "load_s", "kcore_s", "split_s", "save_s", "reload_s", "peak_rss_mib"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:.1f}" if isinstance(r.get(c), float) else str(r.get(c, r.get("error", "")) if c in r or c == "load_s" else "") for c in cols]
        print("| " + " | ".join(cells) + " |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
