"""Helpers shared by the CLI commands (console, output folders, tables)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

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


def _header(c: str) -> str:
    return c.replace("precision", "prec")


def metrics_table(
    title: str,
    rows: Sequence[dict],
    columns: Sequence[str],
    extra: Sequence[tuple[str, str]] = (),
    width: int | None = None,
) -> RenderableType:
    """Rows with 'model' and metric columns (``extra`` = (key, header)), fitted to ``width``.

    Numbers are never cut: when the columns do not fit the terminal (80 columns by default
    when not a TTY), they are spread over several tables, each repeating the model column;
    long model names wrap instead of being cut. Failed rows show "—" and their error below.
    """
    width = width or console.width
    vals: list[list[str]] = []
    for r in rows:
        if r.get("error"):
            vals.append(["—"] * (len(columns) + len(extra)))
        else:
            vals.append(
                [f"{r['metrics'].get(c, float('nan')):.4f}" for c in columns]
                + [_fmt(r.get(k)) for k, _ in extra]
            )
    heads = [_header(c) for c in columns] + [h for _, h in extra]
    col_w = [max([len(h)] + [len(v[j]) for v in vals]) for j, h in enumerate(heads)]
    names = [str(r["model"]) for r in rows]
    model_w = min(max([5, *map(len, names)]), max(12, width // 3))
    def build(chunk: list[int], part: str) -> Table:
        t = Table(title=title + part, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        t.add_column("model", style="bold", overflow="fold", min_width=5, max_width=model_w)
        for j in chunk:
            t.add_column(heads[j], justify="right", no_wrap=True, min_width=col_w[j])
        for name, v in zip(names, vals, strict=True):
            t.add_row(name, *(v[j] for j in chunk))
        return t

    def fits(chunk: list[int]) -> bool:
        wide = Console(width=10_000)
        return Measurement.get(wide, wide.options, build(chunk, "")).maximum <= width

    n = len(col_w)
    chunks = [list(range(n))]
    for k in range(2, n + 1):  # fewest tables that fit, columns spread evenly over them
        if all(fits(c) for c in chunks):
            break
        per = -(-n // k)
        chunks = [list(range(i, min(i + per, n))) for i in range(0, n, per)]
    many = len(chunks) > 1
    tables = [build(c, f" ({i + 1}/{len(chunks)})" if many else "") for i, c in enumerate(chunks)]
    notes = [
        Text(f"{r['model']} failed: {r['error']}", style="red") for r in rows if r.get("error")
    ]
    return tables[0] if len(tables) == 1 and not notes else Group(*tables, *notes)


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
