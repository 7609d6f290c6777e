"""Set-up the benchmark scripts share: the argument parser, ``--seed``/``--out``, comma lists,
the ml-100k RS 8:1:1 split and writing a result file.

Imported by sibling scripts run as ``python benchmarks/NAME.py`` (their folder is then first on
``sys.path``); fusionrec itself is imported only inside ``ml100k_rs_split``, so ``--help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusionrec.data.splits import Split

ML100K_SEED = 2020
"""The seed of every ml-100k comparison in docs/ (RecBole's default)."""


def script_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose ``--help`` prints the script's docstring ``doc`` as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def int_list(text: str) -> list[int]:
    """``"1,8,64"`` -> ``[1, 8, 64]`` (an argparse ``type``: a bad entry is a usage error)."""
    return [int(x) for x in text.split(",")]


def add_seed_and_out(parser: argparse.ArgumentParser, out: Path) -> None:
    """``--seed`` (default 2020) and ``--out`` (the folder results go to, default ``out``),
    in that order, after the script's own options."""
    parser.add_argument("--seed", type=int, default=ML100K_SEED)
    parser.add_argument("--out", type=Path, default=out)


def ml100k_rs_split(seed: int) -> Split:
    """MovieLens-100k split at random 8:1:1 (``rs``), as RecBole's ml-100k runs are."""
    from fusionrec.data import load_dataset
    from fusionrec.data.splits import split

    return split(load_dataset("ml-100k"), "rs", (0.8, 0.1, 0.1), seed=seed)


def write_json(out: Path, name: str, payload: Any) -> Path:
    """``payload`` as indented JSON in ``out/name`` (the folder made if missing; values JSON
    cannot hold written as their ``str``); returns the file's path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path
