"""``fusionrec models``: the registered models and their capabilities."""

from __future__ import annotations

import json

import typer

from fusionrec.cli._common import console


def models_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON incl. config schemas.")) -> None:
    """List registered models with their capabilities."""
    from rich.table import Table

    from fusionrec.models.registry import list_models

    infos = list_models()
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {"name": i.name, "summary": i.summary, "capabilities": i.capabilities.as_dict(), "config": i.config_schema}
                    for i in infos
                ]
            )
        )
        return
    t = Table(title="registered models")
    t.add_column("name", style="bold")
    t.add_column("capabilities")
    t.add_column("parameters")
    t.add_column("summary")
    for i in infos:
        caps = [k for k, v in i.capabilities.as_dict().items() if v]
        t.add_row(i.name, ", ".join(caps) or "-", ", ".join(i.cls.Config.model_fields), i.summary)
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("models")(models_cmd)
