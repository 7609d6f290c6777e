"""Helpers shared by the CLI commands (console, output folders, tables)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fusionrec._fsutil import atomic_write_text  # noqa: F401  (re-exported for the commands)

console = Console()
err_console = Console(stderr=True)

LEADER_COLUMNS = ("recall@10", "ndcg@10", "mrr@10", "hit@10", "precision@10")


def new_run_dir(kind: str, output: Path | None) -> Path:
    """``output`` or a new timestamped folder under ./runs/."""
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        return output
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{kind}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    path.mkdir(parents=True)
    return path


def parse_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_ks(value: str) -> list[int]:
    try:
        ks = [int(v) for v in parse_list(value)]
    except ValueError:
        from fusionrec.errors import ConfigError

        raise ConfigError(f"--ks must be comma-separated integers, got {value!r}") from None
    return ks or [10]


def metrics_table(title: str, rows: Sequence[dict], columns: Sequence[str], extra: Sequence[tuple[str, str]] = ()) -> Table:
    """A rich table: one row per dict with 'model' and metric columns; ``extra`` = (key, header)."""
    t = Table(title=title, show_lines=False)
    t.add_column("model", style="bold")
    for c in columns:
        t.add_column(c.replace("precision", "prec"), justify="right")
    for _, h in extra:
        t.add_column(h, justify="right")
    for r in rows:
        if r.get("error"):
            t.add_row(r["model"], *["—"] * (len(columns) + len(extra) - 1), f"[red]{r['error'][:60]}[/]")
            continue
        vals = [f"{r['metrics'].get(c, float('nan')):.4f}" for c in columns]
        vals += [_fmt(r.get(k)) for k, _ in extra]
        t.add_row(r["model"], *vals)
    return t


def markdown_table(rows: Sequence[dict], columns: Sequence[str], extra: Sequence[tuple[str, str]] = ()) -> str:
    head = ["model", *columns, *(h for _, h in extra)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        if r.get("error"):
            lines.append("| " + " | ".join([r["model"], *(["—"] * (len(head) - 2)), "error: " + r["error"].replace("|", "/")]) + " |")
            continue
        vals = [f"{r['metrics'].get(c, float('nan')):.4f}" for c in columns] + [_fmt(r.get(k)) for k, _ in extra]
        lines.append("| " + " | ".join([r["model"], *vals]) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return "" if v is None else str(v)
