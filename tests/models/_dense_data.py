"""Small random binary interaction datasets for the dense closed-form tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fusionrec.data import Dataset


def random_dataset(n_users: int, n_items: int, density: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.random((n_users, n_items)) < density
    x[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # no empty user
    x[rng.integers(0, n_users, n_items), np.arange(n_items)] = True  # no empty item
    u, i = np.nonzero(x)
    df = pd.DataFrame({"user_id": [f"u{a}" for a in u], "item_id": [f"i{b:03d}" for b in i]})
    return Dataset.from_frames(df, name="rand")
