"""``fusionrec keys create/list/revoke``: API keys of the service (stored hashed)."""

from __future__ import annotations

import typer

keys_app = typer.Typer(help="Manage API keys of the recommendation service.", no_args_is_help=True)

_DB_HELP = "SQLAlchemy URL of the service database (default: the service's default SQLite file)."


def _store(db: str | None):
    from fusionrec.serving.auth import KeyStore
    from fusionrec.serving.settings import ServeSettings

    return KeyStore(db or ServeSettings.from_env().events_url)


@keys_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="A label for the key (who uses it)."),
    admin: bool = typer.Option(False, "--admin", help="Also grant the admin scope (model reload)."),
    db: str = typer.Option(None, "--db", "--events", help=_DB_HELP),
) -> None:
    """Create a key; it is printed once and only its salted hash is stored."""
    from fusionrec.cli._common import console

    key, info = _store(db).create(name, ["read", "admin"] if admin else ["read"])
    console.print(
        f"created key [bold]{info.key_id}[/] ({info.name}, scopes: {','.join(info.scopes)})",
        highlight=False,
    )
    console.print("store it now, it is not shown again:")
    print(key)


@keys_app.command("list")
def list_(db: str = typer.Option(None, "--db", "--events", help=_DB_HELP)) -> None:
    """List keys (ids, names, scopes, created, revoked); secrets are never shown."""
    from rich.table import Table

    from fusionrec.cli._common import console

    t = Table("key_id", "name", "scopes", "created", "revoked")
    for k in _store(db).list():
        when = _when
        t.add_row(k.key_id, k.name, ",".join(k.scopes), when(k.created_at), when(k.revoked_at))
    console.print(t)


@keys_app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="Id of the key (the part after 'frk_')."),
    db: str = typer.Option(None, "--db", "--events", help=_DB_HELP),
) -> None:
    """Revoke a key: requests with it get 403 from then on."""
    from fusionrec.cli._common import console

    info = _store(db).revoke(key_id)
    console.print(f"revoked key {info.key_id} ({info.name})", highlight=False)


def _when(s: float | None) -> str:
    import datetime as dt

    return "" if s is None else dt.datetime.fromtimestamp(s).isoformat(timespec="seconds")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
