"""Synthetic sequence data shared by the GRU4Rec, Caser and warm-start tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fusionrec.data import Dataset


def cycle(n_items: int = 12, n_users: int = 40, length: int = 9, seed: int = 0) -> Dataset:
    """Every user walks the cycle i -> i+1 (mod n_items) from a random start."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        s = int(rng.integers(n_items))
        for t in range(length):
            rows.append((f"u{u}", f"i{(s + t) % n_items}", float(t)))
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def next_item_accuracy(model, ds: Dataset, n_items: int = 12) -> float:
    """Share of users whose top item is the cycle's successor of their last item."""
    last = np.array([s[-1] for s in ds.sequences()])
    top = model.score_indices(np.arange(ds.n_users)).argmax(1)
    names = ds.items.ids
    want = np.array([f"i{(int(names[i][1:]) + 1) % n_items}" for i in last])
    return float(np.mean(names[top] == want))
