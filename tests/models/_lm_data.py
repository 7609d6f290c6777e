"""Data of the LM model tests: a tiny catalogue whose titles reveal two taste groups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fusionrec.data import Dataset

SPACE = [
    "Star voyage: alien starship battle in outer space",
    "Galaxy war: astronauts fight aliens on a spaceship",
    "Mars colony: a science fiction space adventure",
    "Space station: robots and aliens among the stars",
    "Starship captain explores a distant galaxy",
    "Alien invasion from outer space, sci-fi spaceship",
    "Astronaut lost on a planet in deep space",
    "Rocket journey to the moon and the stars",
]
ROMANCE = [
    "Wedding bells: a romantic comedy about love",
    "Paris love story: two hearts fall in love",
    "The bride and the groom: a romance",
    "Summer romance: falling in love at the beach",
    "A love letter: romantic drama of a couple",
    "First date: a sweet romantic comedy",
    "Honeymoon in Venice: love and marriage",
    "Kiss me again: a tender love story",
]


def make_groups(
    cold_per_group: int = 2, n_users: int = 16, seed: int = 0
) -> tuple[Dataset, list[str], list[str]]:
    """Users 0..n/2-1 like space items, the others romance items; the last ``cold_per_group``
    items of each group have no interactions (cold). Returns (dataset, cold space ids, cold romance ids)."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame(
        {
            "item_id": [f"s{i}" for i in range(len(SPACE))]
            + [f"r{i}" for i in range(len(ROMANCE))],
            "title": SPACE + ROMANCE,
        }
    )
    warm_s = [f"s{i}" for i in range(len(SPACE) - cold_per_group)]
    warm_r = [f"r{i}" for i in range(len(ROMANCE) - cold_per_group)]
    rows = []
    t = 0
    for u in range(n_users):
        pool = warm_s if u < n_users // 2 else warm_r
        for i in rng.choice(pool, size=4, replace=False):
            t += 1
            rows.append((f"u{u}", i, float(t)))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    ds = Dataset.from_frames(df, items=items, name="groups")
    cold_s = [f"s{i}" for i in range(len(SPACE) - cold_per_group, len(SPACE))]
    cold_r = [f"r{i}" for i in range(len(ROMANCE) - cold_per_group, len(ROMANCE))]
    return ds, cold_s, cold_r
