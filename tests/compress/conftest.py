"""Fixtures of the compression tests: a small saved dataset and tiny torch models trained on it
through the experiment runner (so each folder has its experiment.json), once per session."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset

#: tiny but real configurations of the five torch models the compression table covers
TINY: dict[str, dict] = {
    "bpr": {"embedding_dim": 16},
    "lightgcn": {"embedding_dim": 16, "n_layers": 2},
    "neumf": {"embedding_dim": 8, "mlp_embedding_dim": 8, "hidden_dims": [16, 8]},
    "two_tower": {"embedding_dim": 16, "hidden_dims": [16], "out_dim": 8},
    "sasrec": {"embedding_dim": 16, "n_heads": 2, "n_layers": 1, "ffn_dim": 32, "max_len": 6},
}


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 users in two taste groups over 30 items, with titles and timestamps."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        group = u % 2
        items = rng.choice(np.arange(15) + 15 * group, size=8, replace=False)
        rows += [(f"u{u}", f"i{i}", 4.0, float(100 * u + j)) for j, i in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(30)], "title": [f"Film {i}" for i in range(30)]})
    path = tmp_path_factory.mktemp("data") / "small_ds"
    Dataset.from_frames(df, items=items, name="small").save(path)
    return path


@pytest.fixture(scope="session")
def trained(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``trained(name)``: the saved folder of a tiny ``name`` model (trained once per session)."""
    from fusionrec.experiment import RunOptions, run
    from fusionrec.experiment.config import config_from_dict

    root = tmp_path_factory.mktemp("models")
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            params = {**TINY.get(name, {}), "epochs": 3, "batch_size": 64} if name in TINY else {}
            cfg = config_from_dict(
                {
                    "data": {"name": str(small_dataset)},
                    "model": {"name": name, "params": params},
                    "eval": {"metrics": ["ndcg"], "ks": [10]},
                    "seed": 7,
                }
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run(cfg, RunOptions(output_dir=root / name))
            done[name] = Path(res.model_dir)
        return done[name]

    return get
