"""The data set-up shared by the ``joint`` benchmarks (``joint_ablation.py``, ``joint_transfer.py``).

MovieLens-100k with its item text encoded once by the packaged all-MiniLM-L6-v2 (cached on disk)
as the ``text`` item embedding, and the RS 8:1:1 split of a seed; the common command-line options.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_common_args(p: argparse.ArgumentParser, output: str) -> None:
    """The options every joint benchmark takes: early-stopping patience, joint parameters as
    JSON, torch threads and the output folder."""
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--params", default="{}", help='joint parameters as JSON, e.g. {"source_lr": {"text": 0.001}}')
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", default=output)


def ml100k_with_text(threads: int) -> Any:
    """MovieLens-100k with the ``text`` item embedding (MiniLM), torch limited to ``threads``."""
    import torch

    from fusionrec.data import load_dataset
    from fusionrec.encoders import encode_items

    torch.set_num_threads(threads)
    ds = load_dataset("ml-100k")
    return ds.with_item_embedding("text", encode_items(ds))


def rs_split(ds: Any, seed: int) -> Any:
    """The RS 8:1:1 split (per user, random order) of ``ds`` at ``seed``."""
    from fusionrec.data.splits import split

    return split(ds, "rs", (0.8, 0.1, 0.1), seed=seed)
