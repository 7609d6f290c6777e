"""Exit codes and output of the command line: usage errors 2, project errors 1, Ctrl-C 130.

Tested against the typer range pinned in pyproject.toml (0.29: typer vendors its own click,
whose exception types differ from click's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import typer

from fusionrec.cli.main import main, run_app
from fusionrec.errors import DataFormatError


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def _no_traceback(out: str) -> None:
    assert "Traceback" not in out and 'File "' not in out, out


def test_bare_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run([], capsys)
    assert code == 2
    assert "Usage: fusionrec" in out and "train" in out
    _no_traceback(out)


@pytest.mark.parametrize(
    ("argv", "usage", "error"),
    [
        (["trian"], "Usage: fusionrec [OPTIONS] COMMAND", "No such command 'trian'. Did you mean 'train'"),
        (["train", "--model", "pop"], "Usage: fusionrec train [OPTIONS]", "No such option: --model"),
        (["recommend", "--model-dir", "x"], "Usage: fusionrec recommend", "Missing option '--user'"),
        (
            ["recommend", "--model-dir", "x", "--user", "1", "-k", "0"],
            "Usage: fusionrec recommend",
            "Invalid value for '-k'",
        ),
    ],
)
def test_usage_errors_are_short_and_exit_2(
    argv: list[str], usage: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(argv, capsys)
    assert code == 2, out
    assert usage in out and error in out and "--help' for help" in out
    assert len(out.strip().splitlines()) <= 6, out
    _no_traceback(out)


def test_invalid_protocol_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["quickstart", "--protocol", "lo"], capsys)
    assert code == 2, out
    assert "invalid value: protocol" in out and "'loo'" in out and "(got 'lo')" in out
    assert "Try 'fusionrec quickstart --help' for help." in out
    assert len(out.strip().splitlines()) <= 3, out
    _no_traceback(out)


def test_project_error_one_line_exit_1(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code, out = _run(["data", "info", str(tmp_path / "nope.csv")], capsys)
    assert code == 1
    assert out.strip().startswith("error:") and "nope.csv" in out
    assert len(out.strip().splitlines()) == 1, out


def _toy_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command("boom")
    def boom(kind: str) -> None:
        if kind == "ctrl-c":
            raise KeyboardInterrupt
        if kind == "exit3":
            raise typer.Exit(3)
        if kind == "data":
            raise DataFormatError("f.csv", 4, "bad")
        if kind == "sysexit":
            sys.exit(5)

    @app.command("other")
    def other() -> None:
        pass

    return app


@pytest.mark.parametrize(
    ("kind", "code", "text"),
    [("ctrl-c", 130, "interrupted"), ("exit3", 3, ""), ("data", 1, "error: f.csv, line 4: bad"), ("sysexit", 5, ""), ("fine", 0, "")],
)
def test_run_app_keeps_exit_codes(kind: str, code: int, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(_toy_app(), ["boom", kind]) == code
    out = capsys.readouterr()
    assert text in out.err
    _no_traceback(out.out + out.err)


def test_ctrl_c_in_a_real_process_exits_130(tmp_path) -> None:
    """SIGINT while a command runs: exit 130 and 'interrupted', no traceback."""
    script = tmp_path / "slow_cli.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from fusionrec.cli import main as m

            @m.app.command("sleepy")
            def sleepy() -> None:
                print("ready", flush=True)
                time.sleep(60)

            sys.exit(m.main(["sleepy"]))
            """
        )
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert p.stdout is not None
    deadline = time.monotonic() + 120
    line = p.stdout.readline()
    assert line.strip() == "ready" or time.monotonic() > deadline, line
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err


def test_verbose_keeps_third_party_loggers_quiet() -> None:
    import logging

    from fusionrec.cli.main import configure_logging

    configure_logging(verbose=True)
    assert logging.getLogger("fusionrec.data").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("matplotlib.font_manager").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("faiss.loader").getEffectiveLevel() == logging.WARNING


def test_encode_text_rate_from_a_warm_cache_is_not_nan() -> None:
    from fusionrec.cli.text_cmd import _rate

    assert _rate(0, 0.01) == "items/s: - (all from cache)"
    assert _rate(200, 2.0) == "items/s: 100.0"


@pytest.mark.parametrize("name", ["pop", "lightgcn_with_a_long_model_name"])
def test_metrics_table_fits_80_columns_without_cutting_numbers(name: str) -> None:
    from rich.console import Console

    from fusionrec.cli._common import metrics_table

    cols = [f"{m}@{k}" for k in (10, 20) for m in ("recall", "ndcg", "mrr", "hit", "precision")]
    rows = [
        {"model": name, "metrics": {c: 0.1234 + i / 1e4 for i, c in enumerate(cols)}, "fit_seconds": 12.3},
        {"model": "ease", "error": "out of memory"},
    ]
    c = Console(width=80, record=True)
    c.print(metrics_table("ml-100k · rs", rows, cols, [("fit_seconds", "fit s")], width=80))
    text = c.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for i, col in enumerate(cols):  # every value and header appears whole
        assert f"{0.1234 + i / 1e4:.4f}" in text and col.replace("precision", "prec") in text
    assert name[:20] in text and name[-5:] in text  # long names wrap, never cut
    assert "ease failed: out of memory" in text
