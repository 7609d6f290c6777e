"""Small deterministic datasets with planted structure, for tests and conformance checks.

``toy_dataset()`` has two taste groups: users ``u0..`` in group A mostly interact with the first
half of the items ("space" films), users of group B with the second half ("romance" films),
plus a little cross-group noise. It carries everything a model may need: ratings, timestamps,
user features (age, gender, group token), item features (title, genre, year, price, tags),
item text, a small knowledge graph (genre and director entities) and an "image" item
embedding whose first coordinate encodes the group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset

__all__ = ["toy_dataset", "checkerboard", "save_two_group_dataset", "TOY_GROUPS"]

#: Names of the two planted taste groups, in item order.
TOY_GROUPS = ("space", "romance")

_WORDS = {
    "space": ["Star", "Galaxy", "Orbit", "Rocket", "Nebula", "Comet", "Mars", "Cosmos"],
    "romance": ["Love", "Heart", "Kiss", "Wedding", "Paris", "Summer", "Letters", "Promise"],
}


def toy_dataset(
    n_users: int = 60, n_items: int = 40, seed: int = 0, noise: float = 0.05
) -> Dataset:
    """A deterministic two-group dataset (same arguments ⇒ identical Dataset).

    Users with index < n_users/2 are group A ("space"), the rest group B ("romance"); items
    with index < n_items/2 are A, the rest B. Each user interacts with 40-70 % of their own
    group's items and each other-group item with probability ``noise``. Every user has at
    least 4 interactions and every item at least one.
    """
    if n_users < 4 or n_items < 4:
        raise ValueError("toy_dataset needs at least 4 users and 4 items")
    rng = np.random.default_rng(seed)
    half_u, half_i = n_users // 2, n_items // 2
    item_group = (np.arange(n_items) >= half_i).astype(int)
    user_group = (np.arange(n_users) >= half_u).astype(int)
    rows: list[tuple[str, str, float, float]] = []
    t = 1_000_000.0
    for u in range(n_users):
        own = np.flatnonzero(item_group == user_group[u])
        other = np.flatnonzero(item_group != user_group[u])
        n_own = max(4, int(round(len(own) * rng.uniform(0.4, 0.7))))
        liked = list(rng.choice(own, size=min(n_own, len(own)), replace=False))
        liked += [int(i) for i in other if rng.random() < noise]
        for i in rng.permutation(np.asarray(liked)):
            t += float(rng.integers(60, 3600))
            in_group = item_group[i] == user_group[u]
            rating = float(rng.integers(4, 6) if in_group else rng.integers(1, 3))
            rows.append((f"u{u}", f"i{i}", rating, t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    # every item appears at least once: give unused items to one user of their group
    seen = set(inter["item_id"])
    extra = []
    for i in range(n_items):
        if f"i{i}" not in seen:
            u = (
                int(rng.integers(0, half_u))
                if item_group[i] == 0
                else int(rng.integers(half_u, n_users))
            )
            t += 60.0
            extra.append((f"u{u}", f"i{i}", 5.0, t))
    if extra:
        inter = pd.concat([inter, pd.DataFrame(extra, columns=inter.columns)], ignore_index=True)

    genres = [TOY_GROUPS[g] for g in item_group]
    titles, descs = [], []
    for i in range(n_items):
        words = _WORDS[genres[i]]
        titles.append(f"{words[i % len(words)]} {words[(i // len(words) + 3) % len(words)]} {i}")
        descs.append(f"A {genres[i]} film number {i} about {words[(i * 5) % len(words)].lower()}.")
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": titles,
            "genre": genres,
            "year": [1990.0 + (i % 20) for i in range(n_items)],
            "price": np.round(rng.uniform(1, 20, n_items), 2),
            "tags": [[genres[i], f"decade{1990 + 10 * (i % 2)}"] for i in range(n_items)],
            "description": descs,
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(n_users)],
            "age": rng.integers(18, 70, n_users).astype(float),
            "gender": rng.choice(["F", "M"], n_users),
            "segment": [f"seg_{TOY_GROUPS[g]}" for g in user_group],
        }
    )
    directors = [f"director_{genres[i]}_{i % 3}" for i in range(n_items)]
    kg = pd.DataFrame(
        {
            "head_id": [f"e_i{i}" for i in range(n_items)] * 2,
            "relation_id": ["has_genre"] * n_items + ["directed_by"] * n_items,
            "tail_id": [f"genre_{g}" for g in genres] + directors,
        }
    )
    link = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "entity_id": [f"e_i{i}" for i in range(n_items)],
        }
    )
    image = np.column_stack(
        [np.where(item_group == 0, 1.0, -1.0), rng.normal(0, 0.1, (n_items, 7))]
    ).astype(np.float32)
    return Dataset.from_frames(
        inter,
        users=users,
        items=items,
        kg_triples=kg,
        kg_link=link,
        user_feature_types={"age": "float", "gender": "token", "segment": "token"},
        item_feature_types={
            "title": "token",
            "genre": "token",
            "year": "float",
            "price": "float",
            "tags": "token_seq",
            "description": "token",
        },
        text_fields=("title", "description"),
        item_embeddings={"image": (items["item_id"].to_numpy(), image)},
        name="toy",
    )


def checkerboard(
    users_per_group: int = 6, items_per_group: int = 4
) -> tuple[Dataset, dict[str, str]]:
    """Two user groups liking disjoint item groups; each user misses exactly one in-group item.

    Returns the dataset and ``{user_id: the in-group item it has not seen}`` — the item any
    collaborative model should rank first among the user's unseen items. Users of group A are
    ``a0, a1, ...`` and like items ``A0..``; group B likewise. Missing items rotate so that
    every item is missed by some user and is popular in its group.
    """
    rows = []
    target = {}
    for g in ("a", "b"):
        for u in range(users_per_group):
            miss = u % items_per_group
            target[f"{g}{u}"] = f"{g.upper()}{miss}"
            for i in range(items_per_group):
                if i != miss:
                    rows.append((f"{g}{u}", f"{g.upper()}{i}"))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"])
    return Dataset.from_frames(inter, name="checkerboard"), target


def save_two_group_dataset(path: str | Path, text_dim: int | None = None) -> Path:
    """Save a small two-group dataset to the folder ``path`` and return it (the CLI and
    compression tests' fixture).

    40 users ``u0..u39`` over 30 items ``i0..i29`` titled "Film N": even users rate 8 of items
    0-14, odd users 8 of items 15-29, all with rating 4.0 and increasing timestamps (the same
    draws for every call: ``default_rng(0)``). ``text_dim`` adds a ``"text"`` item embedding of
    that width (deterministic, first coordinate +1 for items 0-14 and -1 for 15-29), so text
    models can be trained without running a language model.
    """
    if text_dim is not None and text_dim < 1:
        raise ValueError(f"text_dim must be a positive width, got {text_dim}")
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        group = u % 2
        items = rng.choice(np.arange(15) + 15 * group, size=8, replace=False)
        rows += [(f"u{u}", f"i{i}", 4.0, float(100 * u + j)) for j, i in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    ids = np.asarray([f"i{i}" for i in range(30)])
    items = pd.DataFrame({"item_id": ids, "title": [f"Film {i}" for i in range(30)]})
    embeddings = {}
    if text_dim is not None:
        text = np.random.default_rng(1).normal(0.0, 0.3, (30, text_dim))
        text[:, 0] = np.where(np.arange(30) < 15, 1.0, -1.0)
        embeddings["text"] = (ids, text.astype(np.float32))
    path = Path(path)
    Dataset.from_frames(df, items=items, item_embeddings=embeddings or None, name="small").save(path)
    return path
