"""``fusionrec privacy keygen/prepare/pseudonymise/rekey``: pseudonymised ids at rest, PII."""

from __future__ import annotations

from pathlib import Path

import typer

privacy_app = typer.Typer(help="Pseudonymise user ids at rest, generalise PII, rotate the key.", no_args_is_help=True)

_KEY_HELP = "Key file (default: $FUSIONREC_PSEUDONYM_KEY, else $FUSIONREC_HOME/keys/pseudonym.key)."


def _raw_ids(path: Path) -> list[str]:
    from fusionrec.errors import ConfigError

    if path.is_dir():
        from fusionrec.data import load_dataset

        return load_dataset(path).users.ids.tolist()
    if not path.is_file():
        raise ConfigError(f"raw id source {path} does not exist")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@privacy_app.command("keygen")
def keygen(
    out: Path = typer.Option(None, "--out", help="Where to write the key (default: the key file above)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing key (its pseudonyms become unlinkable)."),
) -> None:
    """Create a random 32-byte key (mode 0600); prints its public fingerprint, never the key."""
    from fusionrec.cli._common import console
    from fusionrec.privacy import PseudonymKey

    key = PseudonymKey.generate()
    p = key.save(out, overwrite=overwrite)
    console.print(f"wrote key {key.fingerprint} to {p}", highlight=False)


@privacy_app.command("prepare")
def prepare(
    dataset: str = typer.Argument(..., help="Dataset name or path (as `fusionrec train --data`)."),
    out: Path = typer.Option(..., "--out", help="Folder to save the protected dataset to."),
    pii: str = typer.Option("generalise", "--pii", help="generalise (zip prefix, age bands), drop (both columns) or keep."),
    zip_digits: int = typer.Option(1, "--zip-digits", help="Leading zip characters kept by generalise."),
    pseudonymise: bool = typer.Option(True, "--pseudonymise/--raw-ids", help="Replace user ids by keyed pseudonyms."),
    key_file: Path = typer.Option(None, "--key", help=_KEY_HELP),
) -> None:
    """Load a dataset, generalise or drop its PII columns, pseudonymise user ids, save it."""
    from fusionrec.cli._common import console
    from fusionrec.data import load_dataset
    from fusionrec.privacy import PseudonymKey, protect_pii
    from fusionrec.privacy.folders import _write_marker, pseudonymise_dataset
    from fusionrec.privacy.pii import pii_policy

    policy = pii_policy(pii, zip_digits)
    ds = protect_pii(load_dataset(dataset), policy)
    key = PseudonymKey.load(key_file) if pseudonymise else None
    if key is not None:
        ds = pseudonymise_dataset(ds, key)
    ds.save(out)
    if key is not None:
        from fusionrec.data.manifest import write_manifest

        _write_marker(out, key)
        write_manifest(out)
    console.print(f"saved {ds.n_users} users, {ds.n_interactions} interactions to {out} (pii: {pii}, pseudonyms: {'key ' + key.fingerprint if key else 'off'})", highlight=False)


@privacy_app.command("pseudonymise")
def pseudonymise_cmd(
    target: str = typer.Argument(..., help="A dataset or model folder, or an event store URL (sqlite:///...)."),
    key_file: Path = typer.Option(None, "--key", help=_KEY_HELP),
) -> None:
    """Replace raw user ids in a folder or event store by pseudonyms, in place."""
    from fusionrec.cli._common import console
    from fusionrec.privacy import PseudonymKey, pseudonymise_folder
    from fusionrec.privacy.events import pseudonymise_events

    key = PseudonymKey.load(key_file)
    if "://" in target:
        n = pseudonymise_events(target, key)
        console.print(f"pseudonymised {n} event rows under key {key.fingerprint}", highlight=False)
    else:
        pseudonymise_folder(target, key)
        console.print(f"pseudonymised {target} under key {key.fingerprint}", highlight=False)


@privacy_app.command("rekey")
def rekey(
    target: str = typer.Argument(..., help="A pseudonymised folder or event store URL."),
    old_key: Path = typer.Option(..., "--old-key", help="The key the target was pseudonymised with."),
    new_key: Path = typer.Option(..., "--new-key", help="The new key (create it with `privacy keygen --out`)."),
    raw_ids: Path = typer.Option(..., "--raw-ids", help="Raw user ids of the system of record: a text file (one per line) or a raw dataset folder."),
) -> None:
    """Rotate the key: every HMAC(old, r) becomes HMAC(new, r); refuses a wrong old key or a
    pseudonym that no raw id produces, and then changes nothing."""
    from fusionrec.cli._common import console
    from fusionrec.privacy import PseudonymKey, rekey_folder
    from fusionrec.privacy.events import rekey_events

    old, new = PseudonymKey.load(old_key), PseudonymKey.load(new_key)
    ids = _raw_ids(raw_ids)
    if "://" in target:
        n = rekey_events(target, old, new, ids)
        console.print(f"re-keyed {n} event rows {old.fingerprint} -> {new.fingerprint}", highlight=False)
    else:
        rekey_folder(target, old, new, ids)
        console.print(f"re-keyed {target} {old.fingerprint} -> {new.fingerprint}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")
