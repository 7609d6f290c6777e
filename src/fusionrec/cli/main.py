"""Entry point of the ``fusionrec`` command.

Each sub-command lives in its own module under ``fusionrec.cli`` exposing
``register(app: typer.Typer) -> None``; modules are listed in ``_COMMAND_MODULES`` (a module
not present is skipped). Heavy imports happen inside the commands, not at import time.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from fusionrec.errors import FusionRecError

_COMMAND_MODULES: tuple[str, ...] = (
    "quickstart",
    "data_cmd",
    "models_cmd",
    "train_cmd",
    "evaluate_cmd",
    "explain_cmd",
    "recommend_cmd",
    "tune_cmd",
    "text_cmd",
    "kg_cmd",
    "modality_cmd",
    "strategies_cmd",
    "serve_cmd",
    "keys_cmd",
    "retrain_cmd",
    "bandit_cmd",
    "privacy_cmd",
    "robustness_cmd",
    "compress_cmd",
)

app = typer.Typer(
    name="fusionrec",
    help="fusionrec: train, evaluate, fuse and serve recommenders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


#: Third-party loggers that are noisy at INFO/DEBUG: faiss announces every failed AVX512
#: probe with a ModuleNotFoundError, matplotlib logs ~220 font lines at DEBUG.
_QUIET_LOGGERS = ("faiss", "faiss.loader", "matplotlib", "PIL", "urllib3", "httpx", "httpcore", "filelock", "fsspec", "numba", "h5py", "asyncio", "torch", "sentence_transformers", "transformers")  # fmt: skip
for _name in _QUIET_LOGGERS:  # before any of them is imported (faiss logs at import)
    logging.getLogger(_name).setLevel(logging.WARNING)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    configure_logging(verbose)


def configure_logging(verbose: bool) -> None:
    """fusionrec's own loggers at INFO (DEBUG with -v); third-party loggers stay at WARNING."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("fusionrec").setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _register_all() -> None:
    for mod in _COMMAND_MODULES:
        try:
            m = importlib.import_module(f"fusionrec.cli.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"fusionrec.cli.{mod}":
                raise
            continue
        m.register(app)


_register_all()


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException types, Abort types) of both click and the copy typer >= 0.22 vendors."""
    import click

    usage: list[type] = [click.exceptions.ClickException]
    abort: list[type] = [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click import exceptions as tce  # typer's vendored click (0.22+)

        usage.append(tce.ClickException)
        if hasattr(tce, "Abort"):
            abort.append(tce.Abort)
    except ImportError:  # pragma: no cover - older typer uses click itself
        pass
    return tuple(usage), tuple(abort)


def _error(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def _command_of(argv: list[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")


def run_app(application: typer.Typer, argv: list[str], prog_name: str = "fusionrec") -> int:
    """Run a typer app and turn every way it can end into an exit code.

    Usage errors (unknown command or option, missing or invalid value) print click's short
    usage message and give 2; project errors print one line and give 1; Ctrl-C prints
    "interrupted" and gives 130; an exit code a command returns or raises is kept.
    """
    usage_errors, aborts = _click_exceptions()
    try:
        rv = application(args=argv, prog_name=prog_name, standalone_mode=False)
    except usage_errors as e:
        e.show()  # "Usage: ... / Try '... --help' for help. / Error: ..."
        return int(getattr(e, "exit_code", 2))
    except FusionRecError as e:
        _error(str(e))
        return 1
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except aborts:
        _error("aborted")
        return 1
    except typer.Exit as e:
        return int(e.exit_code)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:
        from pydantic import ValidationError

        if not isinstance(e, ValidationError):
            raise
        # a flag value the command's typed config refused (e.g. --protocol lo)
        parts = [
            f"{'.'.join(str(x) for x in err['loc']) or 'value'}: {err['msg']}"
            + (f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else "")
            for err in e.errors()[:3]
        ]
        cmd = _command_of(argv)
        _error("invalid value: " + "; ".join(parts))
        print(f"Try '{prog_name}{' ' + cmd if cmd else ''} --help' for help.", file=sys.stderr)
        return 2
    # typer returns the code of a Ctrl-C (130) or typer.Exit instead of raising in this mode
    if isinstance(rv, int) and not isinstance(rv, bool):
        if rv == 130:
            _error("interrupted")
        return rv
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; see :func:`run_app` for the exit codes (0, 1, 2, 130)."""
    return run_app(app, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
