"""Data poisoning by shilling profiles (Lam & Riedl 2004; Mobasher et al. 2007).

Each fake profile gives the target items the top rating and fills in ``filler_size`` other
items so that it looks like a real user:

- ``random``: filler items drawn uniformly, ratings ~ N(global mean, global sd);
- ``average``: filler items drawn uniformly, each rated ~ N(that item's mean, its sd);
- ``bandwagon``: ``bandwagon_share`` of the filler taken from the most popular items, rated at
  the top; the rest as in ``random``.

Ratings are rounded and clipped to the dataset's range; a dataset without ratings gets
implicit fake interactions. Fake users get ids ``fake_0``... and follow the real ones, so
every real user keeps their index.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = ["ShillingAttack", "inject_profiles", "target_hit_rate", "pick_targets"]


class ShillingAttack(BaseModel):
    """A push attack: ``n_profiles`` fake users promoting ``targets`` (item ids)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["random", "average", "bandwagon"] = "average"
    """Profile model (see module doc)."""
    targets: tuple[str, ...]
    """External ids of the items pushed."""
    n_profiles: int = Field(50, ge=1)
    """Fake users injected (ml-100k: 50 is about 5% of the users)."""
    filler_size: int = Field(30, ge=0)
    """Filler items per profile besides the targets."""
    bandwagon_share: float = Field(0.3, ge=0, le=1)
    """Bandwagon only: share of the filler taken from the most popular items."""
    n_popular: int = Field(50, ge=1)
    """Bandwagon only: size of the popular pool the selected items are drawn from."""
    filler_sampling: Literal["uniform", "popularity"] = "uniform"
    """How filler items are drawn: ``uniform`` over the catalogue (the textbook attacks), or
    ``popularity``: in proportion to each item's interaction count, as real users' items are.
    Popularity filler hides the profile among real users and ties the targets to the items real
    users like, which is what lifts the targets into real users' lists (docs/privacy.md)."""


def pick_targets(dataset: Dataset, n: int, rng: np.random.Generator, quantile: tuple[float, float] = (0.2, 0.5)) -> tuple[str, ...]:
    """``n`` item ids drawn among unpopular-to-median items (popularity rank quantiles)."""
    order = np.argsort(dataset.item_popularity(), kind="stable")
    lo, hi = (int(q * len(order)) for q in quantile)
    pool = order[lo:max(hi, lo + n)]
    pool = pool[dataset.item_popularity()[pool] > 0]
    if len(pool) < n:
        raise ConfigError(f"only {len(pool)} candidate target items in that popularity range")
    return tuple(dataset.items.to_ids(rng.choice(pool, n, replace=False)).tolist())


def inject_profiles(dataset: Dataset, attack: ShillingAttack, rng: np.random.Generator) -> tuple[Dataset, np.ndarray]:
    """``(poisoned dataset, is_fake)``: the dataset with the fake users appended, and a boolean
    per user of the poisoned dataset.

    Raises:
        ConfigError: a target item is unknown, or the filler is larger than the catalogue.
    """
    unknown = [t for t in attack.targets if t not in dataset.items]
    if unknown:
        raise ConfigError(f"target items not in the dataset: {unknown[:5]}")
    tgt = dataset.items.to_idx(np.asarray(attack.targets, dtype=str))
    others = np.setdiff1d(np.arange(dataset.n_items), tgt)
    if attack.filler_size > len(others):
        raise ConfigError(f"filler_size {attack.filler_size} exceeds the {len(others)} non-target items")
    has_rating = dataset.rating is not None
    r = dataset.rating if has_rating else np.ones(dataset.n_interactions)
    r_min, r_max = float(r.min()), float(r.max())
    g_mean, g_sd = float(r.mean()), float(r.std()) or 1.0
    cnt = np.bincount(dataset.item_idx, minlength=dataset.n_items).astype(float)
    s1 = np.bincount(dataset.item_idx, weights=r, minlength=dataset.n_items)
    s2 = np.bincount(dataset.item_idx, weights=r * r, minlength=dataset.n_items)
    i_mean = np.where(cnt > 0, s1 / np.maximum(cnt, 1), g_mean)
    i_sd = np.sqrt(np.maximum(np.where(cnt > 0, s2 / np.maximum(cnt, 1) - i_mean**2, g_sd**2), 1e-6))
    popular = np.setdiff1d(np.argsort(-cnt, kind="stable")[: attack.n_popular], tgt)
    weight = cnt[others] if attack.filler_sampling == "popularity" else np.ones(len(others))
    if (weight > 0).sum() < attack.filler_size:
        raise ConfigError(f"filler_size {attack.filler_size} exceeds the {(weight > 0).sum()} non-target items with interactions")

    def draw(pool: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
        if attack.filler_sampling == "uniform":
            return rng.choice(pool, n, replace=False)
        return rng.choice(pool, n, replace=False, p=w / w.sum()) if n else pool[:0]

    users, items, ratings = [], [], []
    n0 = dataset.n_users
    for f in range(attack.n_profiles):
        if attack.kind == "bandwagon":
            n_sel = min(int(round(attack.bandwagon_share * attack.filler_size)), len(popular))
            sel = rng.choice(popular, n_sel, replace=False)
            keep = ~np.isin(others, sel)
            rest = draw(others[keep], weight[keep], attack.filler_size - n_sel)
            fill_r = np.concatenate([np.full(n_sel, r_max), rng.normal(g_mean, g_sd, len(rest))])
            filler = np.concatenate([sel, rest])
        else:
            filler = draw(others, weight, attack.filler_size)
            if attack.kind == "random":
                fill_r = rng.normal(g_mean, g_sd, len(filler))
            else:
                fill_r = rng.normal(i_mean[filler], i_sd[filler])
        prof = np.concatenate([tgt, filler])
        users.append(np.full(len(prof), n0 + f))
        items.append(prof)
        ratings.append(np.concatenate([np.full(len(tgt), r_max), np.clip(np.round(fill_r), r_min, r_max)]))
    u = np.concatenate(users)
    fake_ids = [f"fake_{f}" for f in range(attack.n_profiles)]
    clash = [x for x in fake_ids if x in dataset.users]
    if clash:
        raise ConfigError(f"dataset already has users named like fake profiles: {clash[:3]}")
    new_users = dataset.users.extend(fake_ids)
    uf = dataset.user_features
    if uf is not None:
        pad = pd.DataFrame({c: [None] * attack.n_profiles for c in uf.columns}).astype(uf.dtypes.to_dict(), errors="ignore")
        uf = pd.concat([uf, pad], ignore_index=True)
    ts = dataset.timestamp
    poisoned = dataclasses.replace(
        dataset,
        users=new_users,
        user_idx=np.concatenate([dataset.user_idx, u]),
        item_idx=np.concatenate([dataset.item_idx, np.concatenate(items)]),
        rating=np.concatenate([dataset.rating, np.concatenate(ratings)]) if has_rating else None,
        timestamp=None if ts is None else np.concatenate([ts, np.full(len(u), float(ts.max()) + 1)]),
        user_features=uf,
        name=f"{dataset.name}+{attack.kind}{attack.n_profiles}",
        _cache={},
    )
    is_fake = np.zeros(poisoned.n_users, dtype=bool)
    is_fake[n0:] = True
    return poisoned, is_fake


def target_hit_rate(model, users: np.ndarray, targets: tuple[str, ...], k: int = 10) -> float:
    """Share of (user, target) pairs where the target is in the user's top-k (seen items excluded;
    pairs whose user already had the target in training are left out). ``users`` are indices
    of real users in the model's id map."""
    tgt = model.items_.to_idx(np.asarray(targets, dtype=str))
    top = model.recommend_indices(np.asarray(users, dtype=np.int64), k=k)
    top = top[0] if isinstance(top, tuple) else top
    seen = model.seen_[users][:, tgt].toarray() > 0
    hit = (top[:, :, None] == tgt[None, None, :]).any(1)
    valid = ~seen
    return float(hit[valid].mean()) if valid.any() else 0.0
