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
    "recommend_cmd",
    "tune_cmd",
    "text_cmd",
    "kg_cmd",
    "strategies_cmd",
    "serve_cmd",
    "keys_cmd",
    "retrain_cmd",
    "bandit_cmd",
)

app = typer.Typer(
    name="fusionrec",
    help="fusionrec: train, evaluate, fuse and serve recommenders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user-facing errors print one line (no traceback) and exit 1."""
    from rich.console import Console
    from rich.markup import escape

    try:
        app(args=argv, standalone_mode=False)
    except FusionRecError as e:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        return 1
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        return 1
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        return 130
    except typer.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return int(e.code or 0)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        if isinstance(e, click.exceptions.Abort):
            return 1
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
