"""fusionrec vs RecBole 1.2.1 on MovieLens-100k: quality, fit seconds and peak memory, side by side.

What it measures
    For each model row of ``MODELS`` it runs the fusionrec model and the RecBole model, each in
    its OWN process, timed with GNU ``/usr/bin/time -v`` (whole-process wall seconds and peak
    resident memory). Each runner also reports its own fit seconds (training, including the
    validation passes of early stopping) and test-evaluation seconds. Protocol on both sides
    is RecBole's default general protocol: per-user random 8:1:1 split (RS, order RO), seed
    2020, full ranking over all items with training (and, at test, validation) items masked,
    top-10 Recall/MRR/NDCG/Hit/Precision, early stopping on the validation set. The two
    frameworks draw their random split with different generators, so the users' test items
    differ; the protocol is the same, the split is not identical (expect a few 0.001 of noise).
    SASRec uses leave-one-out by time; KG models (CKE) keep only items with a KG link, as
    RecBole does.

    The fusionrec side is ``benchmarks/_run_fusionrec.py`` (this interpreter); the RecBole
    side is ``benchmarks/_run_recbole.py`` run by a separate virtualenv's python, because
    RecBole 1.2.1 needs numpy<2, pandas<3, scipy<1.13. That virtualenv is created on first
    use (``python -m venv`` + ``pip install torch==2.13.0 recbole==1.2.1 "numpy<2" "pandas<3"
    "scipy<1.13" "setuptools<81"``). RecBole results are stored in
    ``.bench/recbole_results.json`` keyed by model, protocol and RecBole version;
    ``--reuse-recbole`` takes them from there instead of re-running (RecBole is slow).

    It prints a table (model | fusionrec NDCG@10 Recall@10 MRR@10 Hit@10 fit s peak MiB |
    RecBole the same | fit-time ratio), the machine load (``os.getloadavg``) before and after,
    and writes everything as JSON. Speed is only comparable within one run on one machine;
    report the load with any figure. This is a benchmark, not a test: it never fails on speed.

How to run (from the repository root, fusionrec's virtualenv active)
    python benchmarks/compare_recbole.py                         # pop,itemknn,ease,bpr
    python benchmarks/compare_recbole.py --models pop,ease --skip-recbole
    python benchmarks/compare_recbole.py --models neumf,lightgcn --fusionrec-only   # same as --skip-recbole
    python benchmarks/compare_recbole.py --models neumf,lightgcn --reuse-recbole
    python benchmarks/compare_recbole.py --models all --reuse-recbole --output bench.json
    python benchmarks/compare_recbole.py --list
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
BENCH_DIR = ROOT / ".bench"
RESULTS_STORE = BENCH_DIR / "recbole_results.json"
LOG_DIR = BENCH_DIR / "logs"
MARKER = "BENCH_RESULT "
METRICS = ("ndcg@10", "recall@10", "mrr@10", "hit@10", "precision@10")

RECBOLE_VERSION = "1.2.1"
RECBOLE_PINS = (
    "torch==2.13.0",
    f"recbole=={RECBOLE_VERSION}",
    "numpy<2",
    "pandas<3",
    "scipy<1.13",
    "setuptools<81",
    "dgl==1.1.3",  # KGAT only; see _run_recbole._dgl_compat
)


class BenchError(RuntimeError):
    """A benchmark set-up problem with a message meant for the user."""


@dataclass(frozen=True)
class ModelRow:
    """One line of the comparison: the same model in both frameworks."""

    key: str
    """Name on the command line (``--models``)."""
    fusionrec: str | None
    """fusionrec registry name (None: no fusionrec counterpart)."""
    recbole: str | None
    """RecBole model class name (None: no RecBole counterpart)."""
    protocol: str = "rs"
    """'rs' (random 8:1:1 per user) or 'loo' (leave-one-out by time)."""
    kg_only: bool = False
    """Keep only items with a KG link (RecBole's KG models do so)."""
    note: str = ""
    """Shown under the table."""


#: The comparison table. A fusionrec model not registered yet is reported "not available".
MODELS: tuple[ModelRow, ...] = (
    ModelRow("pop", "pop", "Pop"),
    ModelRow("itemknn", "itemknn", "ItemKNN"),
    ModelRow("ease", "ease", "EASE"),
    ModelRow("bpr", "bpr", "BPR"),
    ModelRow("neumf", "neumf", "NeuMF"),
    ModelRow("lightgcn", "lightgcn", "LightGCN"),
    ModelRow(
        "sasrec",
        "sasrec",
        "SASRec",
        protocol="loo",
        note="leave-one-out by time (RecBole LS valid_and_test, TO)",
    ),
    ModelRow("two_tower", "two_tower", None, note="RecBole 1.2.1 has no general two-tower model"),
    ModelRow(
        "cke", "cke", "CKE", kg_only=True, note="items without a KG link dropped on both sides"
    ),
    ModelRow(
        "kgat",
        "kgat",
        "KGAT",
        kg_only=True,
        note="items without a KG link dropped on both sides; RecBole's KGAT runs on dgl 1.1.3 "
        "with two renamed dgl calls mapped (_run_recbole._dgl_compat)",
    ),
)
DEFAULT_MODELS = ("pop", "itemknn", "ease", "bpr")
_BY_KEY = {r.key: r for r in MODELS}


# --------------------------------------------------------------------------- arguments
def parse_models(spec: str) -> list[ModelRow]:
    """'pop,ease' -> rows; 'all' -> every row; unknown names raise a clear error."""
    if spec.strip().lower() == "all":
        return list(MODELS)
    keys = [k.strip().lower() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keys if k not in _BY_KEY]
    if unknown or not keys:
        raise BenchError(
            f"unknown model(s) {unknown or spec!r}; choose from: {', '.join(_BY_KEY)} (or 'all')"
        )
    return [_BY_KEY[k] for k in dict.fromkeys(keys)]


# --------------------------------------------------------------------------- measuring
def timer_kind() -> str:
    """'gnu-time' when /usr/bin/time is GNU time (has -v), else 'python-resource'."""
    exe = Path("/usr/bin/time")
    if exe.exists():
        try:
            r = subprocess.run([str(exe), "-v", "true"], capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and "Maximum resident set size" in r.stderr:
                return "gnu-time"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "python-resource"


def _parse_gnu_time(text: str) -> dict:
    out: dict = {"timer": "gnu-time"}
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    if m:
        secs = 0.0
        for part in m.group(1).split(":"):
            secs = secs * 60 + float(part)
        out["wall_s"] = round(secs, 2)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["max_rss_kib"] = int(m.group(1))
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        out["exit_code"] = int(m.group(1))
    return out


def run_measured(cmd: list[str], *, env: dict, timer: str, timeout: float, log_name: str) -> dict:
    """Run ``cmd`` in its own process (group), timed; return its result line plus measurements."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    fd, tfile = tempfile.mkstemp(prefix="time.", dir=BENCH_DIR)
    os.close(fd)
    if timer == "gnu-time":
        full = ["/usr/bin/time", "-v", "-o", tfile, *cmd]
    else:
        full = [sys.executable, str(HERE / "_measure.py"), tfile, *cmd]
    load_before = os.getloadavg()
    proc = subprocess.Popen(
        full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, 9)  # the whole group: time/_measure and the runner under it
        stdout, stderr = proc.communicate()
    load_after = os.getloadavg()
    log_path = LOG_DIR / f"{log_name}.log"
    log_path.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    meas_text = Path(tfile).read_text() if Path(tfile).exists() else ""
    Path(tfile).unlink(missing_ok=True)
    if timer == "gnu-time":
        meas = _parse_gnu_time(meas_text)
    else:
        meas = json.loads(meas_text) if meas_text.strip() else {"timer": timer}
    result = None
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
            break
    if result is None:
        why = (
            f"timed out after {timeout:.0f} s"
            if timed_out
            else f"exit code {proc.returncode}, no result line"
        )
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        result = {"status": "error", "reason": f"{why}; see {log_path.relative_to(ROOT)}: {tail}"}
    result["process_wall_s"] = meas.get("wall_s")
    rss = meas.get("max_rss_kib")
    result["peak_rss_mib"] = None if rss is None else round(rss / 1024, 1)
    result["timer"] = meas.get("timer", timer)
    result["load_before"] = [round(x, 2) for x in load_before]
    result["load_after"] = [round(x, 2) for x in load_after]
    result["log"] = str(log_path.relative_to(ROOT))
    return result


# --------------------------------------------------------------------------- RecBole venv
def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _recbole_version(py: Path) -> str | None:
    try:
        r = subprocess.run(
            [str(py), "-c", "import recbole, numpy, scipy; print(recbole.__version__)"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_recbole_venv(venv: Path) -> Path:
    """Create the RecBole virtualenv if it is missing or broken (idempotent); return its python."""
    py = _venv_python(venv)
    if py.exists() and _recbole_version(py) == RECBOLE_VERSION:
        return py
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "recbole-venv-install.log"
    print(
        f"[setup] creating RecBole {RECBOLE_VERSION} virtualenv in {venv} (several minutes, log: {log})",
        flush=True,
    )
    with log.open("w") as f:
        if not py.exists():
            r = subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], stdout=f, stderr=subprocess.STDOUT
            )
            if r.returncode != 0:
                raise BenchError(
                    f"could not create a virtualenv at {venv} (python -m venv failed; see {log})"
                )
        cmd = [str(py), "-m", "pip", "install", *RECBOLE_PINS]
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = "\n  ".join(log.read_text().strip().splitlines()[-5:])
        raise BenchError(
            f"pip could not install RecBole's pinned stack ({' '.join(RECBOLE_PINS)}):\n  {tail}\nfull log: {log}"
        )
    got = _recbole_version(py)
    if got != RECBOLE_VERSION:
        raise BenchError(
            f"RecBole virtualenv {venv} installed, but 'import recbole' gives {got!r}; see {log}"
        )
    return py


# --------------------------------------------------------------------------- result store
def store_key(row: ModelRow, epochs: int | None = None, time_limit: float | None = None) -> str:
    """Key of a stored RecBole result: model, protocol, caps (if any), RecBole version."""
    cap = (f"|epochs={epochs}" if epochs else "") + (
        f"|time<={time_limit:g}s" if time_limit else ""
    )
    return f"{row.recbole}|{row.protocol}{'|kg-only' if row.kg_only else ''}{cap}|recbole=={RECBOLE_VERSION}"


def load_store(path: Path = RESULTS_STORE) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BenchError(f"{path} is not valid JSON ({e}); delete it to start over") from None
    return data.get("results", {})


def save_store_entry(key: str, record: dict, path: Path = RESULTS_STORE) -> None:
    """Add one result to the store, re-reading it first (another run may have added results)."""
    results = load_store(path)
    results[key] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": 1, "results": results}, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------- runs
def run_fusionrec(row: ModelRow, timer: str, timeout: float) -> dict:
    if row.fusionrec is None:
        return {"status": "no counterpart"}
    cmd = [
        sys.executable,
        str(HERE / "_run_fusionrec.py"),
        row.fusionrec,
        "--protocol",
        row.protocol,
    ]
    if row.kg_only:
        cmd.append("--kg-only")
    print(f"[fusionrec] {row.fusionrec} ...", flush=True)
    return run_measured(
        cmd, env=dict(os.environ), timer=timer, timeout=timeout, log_name=f"fusionrec-{row.key}"
    )


def recbole_env() -> dict[str, str]:
    """Environment of a RecBole child process: this one's, without our virtualenv's Python
    paths, with plain ``torch.load`` allowed (RecBole reloads its own checkpoints with it)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_recbole(
    row: ModelRow,
    py: Path,
    timer: str,
    timeout: float,
    epochs: int | None = None,
    time_limit: float | None = None,
) -> dict:
    env = recbole_env()
    cmd = [
        str(py),
        str(HERE / "_run_recbole.py"),
        str(row.recbole),
        "--protocol",
        row.protocol,
        "--workdir",
        str(BENCH_DIR / "recbole_work"),
    ]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    if time_limit:
        cmd += ["--time-limit", str(time_limit)]
    print(
        f"[recbole]   {row.recbole}{f' (capped at {epochs} epochs)' if epochs else ''} ...",
        flush=True,
    )
    res = run_measured(cmd, env=env, timer=timer, timeout=timeout, log_name=f"recbole-{row.key}")
    res["measured_at"] = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    return res


# --------------------------------------------------------------------------- report
def _fmt(v: object, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _side(res: dict) -> list[str]:
    if res.get("status") != "ok":
        status = res.get("status", "-")
        return [status, "", "", "", "", ""]
    return [
        _fmt(res.get("ndcg@10")),
        _fmt(res.get("recall@10")),
        _fmt(res.get("mrr@10")),
        _fmt(res.get("hit@10")),
        _fmt(res.get("fit_s"), 1),
        _fmt(res.get("peak_rss_mib"), 0),
    ]


def fit_ratio(fr: dict, rb: dict) -> float | None:
    """fusionrec fit seconds / RecBole fit seconds (None when either is missing)."""
    a, b = fr.get("fit_s"), rb.get("fit_s")
    if fr.get("status") != "ok" or rb.get("status") != "ok" or not a or not b:
        return None
    return round(a / b, 3)


def format_table(entries: list[dict]) -> str:
    """The side-by-side text table."""
    cols = ["NDCG@10", "Recall@10", "MRR@10", "Hit@10", "fit s", "peak MiB"]
    head = ["model", *(f"fr {c}" for c in cols), *(f"rb {c}" for c in cols), "fit fr/rb"]
    rows = []
    for e in entries:
        ratio = e.get("fit_ratio")
        rows.append(
            [
                e["model"],
                *_side(e["fusionrec"]),
                *_side(e["recbole"]),
                "-" if ratio is None else f"{ratio:.2f}",
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list) -> str:
        cells = (
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        return "  ".join(cells)

    sep = "  ".join("-" * w for w in widths)
    out = [line(head), sep, *(line(r) for r in rows)]
    notes = []
    for e in entries:
        for side in ("fusionrec", "recbole"):
            res = e[side]
            if res.get("status") not in ("ok", "no counterpart") and res.get("reason"):
                notes.append(f"  {e['model']} ({side}): {res['status']}: {res['reason'][:300]}")
            if res.get("status") == "ok" and res.get("epochs_run"):
                extra = ""
                if res.get("epoch_s_mean") is not None:
                    extra = (
                        f", {res['epoch_s_mean']:.2f} s/epoch, best epoch {res.get('best_epoch')}"
                    )
                cpu = res.get("fit_cpu_s")
                notes.append(
                    f"  {e['model']} ({side}): {res['epochs_run']} epochs{extra}"
                    + ("" if cpu is None else f"; fit CPU {cpu:.1f} s")
                )
            curve = (
                (res.get("valid_curve") or res.get("valid_curve_mrr@10"))
                if res.get("status") == "ok"
                else None
            )
            if curve:
                scores = [c[0] for c in curve]
                best = max(range(len(scores)), key=scores.__getitem__)
                every = max(len(scores) // 6, 1)
                pts = ", ".join(f"e{i + 1} {scores[i]:.4f}" for i in range(0, len(scores), every))
                if res.get("stopped_by_time_limit"):
                    notes.append(f"  {e['model']} ({side}): stopped by the time limit")
                notes.append(
                    f"  {e['model']} ({side}): valid {res.get('valid_metric', 'MRR@10')} by epoch: {pts}, last e{len(scores)} "
                    f"{scores[-1]:.4f}; best e{best + 1} {scores[best]:.4f}"
                )
            if res.get("note"):
                notes.append(f"  {e['model']} ({side}): {res['note']}")
            if res.get("reused"):
                notes.append(
                    f"  {e['model']} ({side}): reused from {RESULTS_STORE.relative_to(ROOT)} (measured {res.get('measured_at')}, load before {res.get('load_before')} after {res.get('load_after')})"
                )
        fr_cpu, rb_cpu = e["fusionrec"].get("fit_cpu_s"), e["recbole"].get("fit_cpu_s")
        if fr_cpu and rb_cpu:
            notes.append(
                f"  {e['model']}: fit CPU-second ratio RecBole/fusionrec {rb_cpu / fr_cpu:.2f}"
            )
        if e.get("note"):
            notes.append(f"  {e['model']}: {e['note']}")
    if notes:
        out += ["notes:", *notes]
    return "\n".join(out)


def machine_info(timer: str) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "timer": timer,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="fusionrec vs RecBole 1.2.1 on MovieLens-100k (see the module docstring)."
    )
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help=f"comma list of rows or 'all' (default {','.join(DEFAULT_MODELS)})",
    )
    p.add_argument(
        "--skip-recbole",
        "--fusionrec-only",
        dest="skip_recbole",
        action="store_true",
        help="run only the fusionrec side",
    )
    p.add_argument("--skip-fusionrec", action="store_true", help="run only the RecBole side")
    p.add_argument(
        "--reuse-recbole",
        action="store_true",
        help=f"take RecBole results stored in {RESULTS_STORE.relative_to(ROOT)} when present",
    )
    p.add_argument(
        "--recbole-venv",
        default=str(BENCH_DIR / "recbole-venv"),
        help="RecBole virtualenv (created if missing)",
    )
    p.add_argument(
        "--output", default=str(BENCH_DIR / "compare_recbole.json"), help="JSON report path"
    )
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed per model run (default 1800)"
    )
    p.add_argument(
        "--recbole-epochs",
        type=int,
        default=None,
        help="cap RecBole's epochs (e.g. for SASRec, ~190 s/epoch here); stored under its own key",
    )
    p.add_argument(
        "--recbole-time-limit",
        type=float,
        default=None,
        help="seconds of RecBole fitting after which no new epoch starts; its best checkpoint "
        "so far is evaluated (stored under its own key)",
    )
    p.add_argument("--list", action="store_true", help="print the model table and exit")
    a = p.parse_args(argv)

    if a.list:
        for r in MODELS:
            print(
                f"{r.key:10s} fusionrec={r.fusionrec or '-':10s} recbole={r.recbole or '-':9s} protocol={r.protocol}{' kg-only' if r.kg_only else ''}  {r.note}"
            )
        return 0
    try:
        rows = parse_models(a.models)
        timer = timer_kind()
        if timer != "gnu-time":
            print(
                "[setup] GNU /usr/bin/time not found (apt-get install time): measuring with Python's resource module instead",
                flush=True,
            )
        store = load_store()
        py: Path | None = None
        load_before = os.getloadavg()
        print(
            f"[setup] load average before: {' '.join(f'{x:.2f}' for x in load_before)} on {os.cpu_count()} CPUs",
            flush=True,
        )
        entries = []
        for row in rows:
            fr = {"status": "skipped"} if a.skip_fusionrec else run_fusionrec(row, timer, a.timeout)
            if row.recbole is None:
                rb: dict = {"status": "no counterpart"}
            elif a.skip_recbole:
                rb = {"status": "skipped"}
            elif (
                a.reuse_recbole
                and store.get(store_key(row, a.recbole_epochs, a.recbole_time_limit), {}).get(
                    "status"
                )
                == "ok"
            ):
                rb = dict(
                    store[store_key(row, a.recbole_epochs, a.recbole_time_limit)], reused=True
                )
            else:
                if py is None:
                    py = ensure_recbole_venv(Path(a.recbole_venv).resolve())
                rb = run_recbole(row, py, timer, a.timeout, a.recbole_epochs, a.recbole_time_limit)
                if rb.get("status") == "ok":
                    store[store_key(row, a.recbole_epochs, a.recbole_time_limit)] = rb
                    save_store_entry(store_key(row, a.recbole_epochs, a.recbole_time_limit), rb)
            entries.append(
                {
                    **asdict(row),
                    "model": row.key,
                    "fusionrec": fr,
                    "recbole": rb,
                    "fit_ratio": fit_ratio(fr, rb),
                }
            )
        load_after = os.getloadavg()
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    print()
    print(format_table(entries))
    print(
        f"\nload average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}"
        f"  after: {' '.join(f'{x:.2f}' for x in load_after)}  ({os.cpu_count()} CPUs, timer: {timer})"
    )
    report = {
        "protocol": {
            "dataset": "ml-100k",
            "split": "per-user random 8:1:1 (RS, RO), seed 2020; 'loo' rows leave-one-out by time",
            "ranking": "full, train (+valid at test) items masked, top-10",
            "recbole_version": RECBOLE_VERSION,
        },
        "machine": machine_info(timer),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "results": entries,
    }
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"JSON report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
