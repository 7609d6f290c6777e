"""Fixtures of the CLI tests: a small saved dataset (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        group = u % 2
        items = rng.choice(np.arange(15) + 15 * group, size=8, replace=False)
        rows += [(f"u{u}", f"i{i}", 4.0, float(100 * u + j)) for j, i in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(30)], "title": [f"Film {i}" for i in range(30)]}
    )
    path = tmp_path / "small_ds"
    Dataset.from_frames(df, items=items, name="small").save(path)
    return path
