"""Shared fixtures. ``ml100k`` is the real MovieLens-100k (slow tests only)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    """Real ml-100k through the public loader (fetched once into $FUSIONREC_HOME)."""
    from fusionrec.data import load_dataset

    return load_dataset("ml-100k")


@pytest.fixture
def tiny() -> Dataset:
    """6 users x 6 items, two taste groups: users 0-2 like items a-c, users 3-5 like d-f."""
    rows = []
    t = 0
    for u in range(6):
        liked = ["a", "b", "c"] if u < 3 else ["d", "e", "f"]
        for i in liked[: 2 + (u % 2)]:
            t += 1
            rows.append((f"u{u}", i, 5.0, float(t)))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame({"item_id": list("abcdef"), "title": [f"Item {c}" for c in "abcdef"]})
    return Dataset.from_frames(df, items=items, name="tiny")


def _fingerprint(ds: Dataset) -> tuple:
    parts = [ds.user_idx.tobytes(), ds.item_idx.tobytes()]
    for a in (ds.rating, ds.timestamp):
        parts.append(b"" if a is None else a.tobytes())
    for t in (ds.user_features, ds.item_features):
        parts.append(
            b""
            if t is None
            else pd.util.hash_pandas_object(t.astype(str), index=True).values.tobytes()
        )
    return tuple(hash(p) for p in parts)


@pytest.fixture
def guard_mutation():
    """Call ``guard(ds)`` at the start of a test; the test fails if ``ds`` changed by its end."""
    seen: list[tuple[Dataset, tuple]] = []

    def guard(ds: Dataset) -> Dataset:
        seen.append((ds, _fingerprint(ds)))
        return ds

    yield guard
    for ds, fp in seen:
        assert _fingerprint(ds) == fp, f"test mutated dataset {ds.name!r}"


def data_dir() -> Path:
    return Path(__file__).parent / "data"


np.seterr(all="ignore")
