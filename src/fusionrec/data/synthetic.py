"""Synthetic datasets with planted structure, to test that models find the signal they should.

Users and items belong to latent clusters; a user interacts mostly with items of its own
cluster. Every kind of side information (item features, item text, KG, each named item
modality) either reveals the item clusters that drive interactions or, when ``signal`` names
one source only, a *decoy* clustering unrelated to interactions. So with
``signal="image"`` a model can beat popularity from side information only through the
image matrix, which makes fusion testable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap

__all__ = ["make_synthetic", "make_power_law", "power_law_shape", "SyntheticTruth", "SIDE_SOURCES", "SCALES"]

#: Sizes the scale benchmarks and slow tests share (interactions).
SCALES = {"1m": 1_000_000, "5m": 5_000_000, "25m": 25_000_000}
#: MovieLens-25M: 162,541 users, 59,047 items, 25,000,095 ratings.
_ML25M = (25_000_095, 162_541, 59_047)

#: Side-information sources besides the named modalities.
SIDE_SOURCES = ("features", "text", "kg")

_TOPICS = (
    ("space", "rocket", "planet", "galaxy", "orbit", "astronaut"),
    ("ocean", "ship", "pirate", "island", "storm", "harbor"),
    ("forest", "wolf", "hunter", "cabin", "river", "trail"),
    ("city", "detective", "crime", "police", "alley", "heist"),
    ("castle", "dragon", "knight", "wizard", "sword", "kingdom"),
    ("school", "friends", "prom", "teacher", "summer", "crush"),
    ("war", "soldier", "battle", "general", "trench", "medal"),
    ("kitchen", "chef", "recipe", "restaurant", "spice", "feast"),
)


@dataclass(frozen=True)
class SyntheticTruth:
    """The planted structure behind a synthetic dataset (index order = the Dataset's)."""

    user_cluster: np.ndarray
    #: item clusters that drive interactions
    item_cluster: np.ndarray
    #: an independent item clustering shown by the side sources that do not carry the signal
    decoy_cluster: np.ndarray
    #: side sources whose content follows ``item_cluster``
    informative: tuple[str, ...]


def _topic_words(c: int) -> tuple[str, ...]:
    if c < len(_TOPICS):
        return _TOPICS[c]
    return tuple(f"topic{c}word{j}" for j in range(6))


def make_synthetic(
    n_users: int = 200,
    n_items: int = 100,
    n_interactions_per_user: int = 10,
    seed: int = 0,
    *,
    n_clusters: int = 4,
    purity: float = 0.9,
    popularity_shape: float = 1.0,
    modalities: Mapping[str, int] | Sequence[str] = ("image", "audio"),
    modality_dim: int = 16,
    modality_noise: float = 0.5,
    feature_noise: float = 0.1,
    signal: str = "all",
    text_words: int = 6,
    kg: bool = True,
    return_truth: bool = False,
    name: str | None = None,
) -> Dataset | tuple[Dataset, SyntheticTruth]:
    """Generate a dataset with latent user/item clusters (deterministic under ``seed``).

    Args:
        n_users, n_items: sizes; users ``u0..``, items ``i0..`` (ids are strings).
        n_interactions_per_user: distinct items per user (capped at ``n_items``).
        seed: the only source of randomness.
        n_clusters: number of latent clusters (items spread evenly over them).
        purity: probability that an interaction is with an item of the user's own cluster.
        popularity_shape: gamma shape of item popularity weights (smaller = more skewed).
        modalities: names of item matrices to create (or name -> dimension).
        modality_dim: dimension of each modality given by name only.
        modality_noise: std of the Gaussian noise added to the cluster centroid (higher = weaker signal).
        feature_noise: probability that a genre/text word/KG edge shows a random cluster instead.
        signal: ``"all"`` (every side source reveals the clusters) or one source name (a modality,
            ``"features"``, ``"text"`` or ``"kg"``): only that source reveals them; the others
            follow an independent decoy clustering.
        text_words: words in each item description.
        kg: build the knowledge graph.
        return_truth: also return the :class:`SyntheticTruth`.
        name: dataset name (default ``synthetic-<seed>``).

    The Dataset has ratings (4-5 in-cluster, 1-3 otherwise), timestamps, item features
    ``genre`` (token), ``year`` (float), ``title`` and ``description`` (text), user feature
    ``segment``, a KG (item -> topic / creator entities) and the modality matrices.
    """
    if n_users < 1 or n_items < 1 or n_interactions_per_user < 1:
        raise ValueError("n_users, n_items and n_interactions_per_user must be >= 1")
    if not 1 <= n_clusters <= n_items:
        raise ValueError(f"n_clusters must be in 1..n_items, got {n_clusters}")
    if not 0.0 <= purity <= 1.0 or not 0.0 <= feature_noise <= 1.0:
        raise ValueError("purity and feature_noise must be probabilities in [0, 1]")
    mods = (
        dict(modalities)
        if isinstance(modalities, Mapping)
        else dict.fromkeys(modalities, modality_dim)
    )
    sources = (*SIDE_SOURCES, *mods)
    if signal != "all" and signal not in sources:
        raise ValueError(f"signal must be 'all' or one of {', '.join(sources)}, got {signal!r}")
    informative = sources if signal == "all" else (signal,)
    rng = np.random.default_rng(seed)
    k = n_clusters
    item_cluster = rng.permutation(np.arange(n_items) % k)
    decoy_cluster = rng.permutation(np.arange(n_items) % k)
    user_cluster = rng.integers(0, k, size=n_users)
    pop = rng.gamma(popularity_shape, 1.0, size=n_items) + 1e-6

    # ---- interactions
    n_per = min(n_interactions_per_user, n_items)
    members = [np.flatnonzero(item_cluster == c) for c in range(k)]
    users, items, ratings = [], [], []
    for u in range(n_users):
        own = members[user_cluster[u]]
        n_in = min(int(rng.binomial(n_per, purity)), len(own))
        others = np.flatnonzero(item_cluster != user_cluster[u])
        n_out = min(n_per - n_in, len(others))
        n_in = min(n_per - n_out, len(own))
        chosen_in = (
            rng.choice(own, size=n_in, replace=False, p=pop[own] / pop[own].sum())
            if n_in
            else own[:0]
        )
        chosen_out = (
            rng.choice(others, size=n_out, replace=False, p=pop[others] / pop[others].sum())
            if n_out
            else others[:0]
        )
        sel = np.concatenate([chosen_in, chosen_out])
        sel = sel[rng.permutation(len(sel))]
        users.append(np.full(len(sel), u))
        items.append(sel)
        in_c = item_cluster[sel] == user_cluster[u]
        ratings.append(
            np.where(in_c, rng.integers(4, 6, size=len(sel)), rng.integers(1, 4, size=len(sel)))
        )
    uu, ii, rr = (
        np.concatenate(users),
        np.concatenate(items),
        np.concatenate(ratings).astype(np.float64),
    )
    ts = 1_000_000_000.0 + np.concatenate(
        [np.sort(rng.integers(0, 10**7, size=len(x))) for x in items]
    ).astype(np.float64)
    user_ids = np.array([f"u{j}" for j in range(n_users)], dtype=object)
    item_ids = np.array([f"i{j}" for j in range(n_items)], dtype=object)
    inter = pd.DataFrame(
        {"user_id": user_ids[uu], "item_id": item_ids[ii], "rating": rr, "timestamp": ts}
    )

    def shown(src: str) -> np.ndarray:
        """Per-item cluster this source displays (with feature noise)."""
        base = item_cluster if src in informative else decoy_cluster
        flip = rng.random(n_items) < feature_noise
        return np.where(flip, rng.integers(0, k, size=n_items), base)

    # ---- item features and text
    g = shown("features")
    t = shown("text")
    words = []
    for j in range(n_items):
        own_words = _topic_words(int(t[j]))
        noisy = rng.random(text_words) < feature_noise
        w = [
            _topic_words(int(rng.integers(0, k)))[int(rng.integers(0, 6))]
            if noisy[q]
            else own_words[int(rng.integers(0, 6))]
            for q in range(text_words)
        ]
        words.append("a story of " + " ".join(w))
    items_df = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Item {j}" for j in range(n_items)],
            "description": words,
            "genre": [f"genre{c}" for c in g],
            "year": 1980.0 + 5.0 * g + rng.normal(0.0, 1.0, size=n_items).round(),
        }
    )
    seg = user_cluster if "features" in informative else rng.integers(0, k, size=n_users)
    users_df = pd.DataFrame({"user_id": user_ids, "segment": [f"segment{c}" for c in seg]})

    # ---- knowledge graph
    triples = link = None
    if kg:
        kc_topic, kc_creator = shown("kg"), shown("kg")
        ent = np.array([f"item:{x}" for x in item_ids], dtype=object)
        creator = rng.integers(0, 3, size=n_items)
        heads = np.concatenate([ent, ent, [f"creator:{c}_{j}" for c in range(k) for j in range(3)]])
        rels = ["has_topic"] * n_items + ["made_by"] * n_items + ["works_in"] * (3 * k)
        tails = np.concatenate(
            [
                [f"topic:{c}" for c in kc_topic],
                [f"creator:{c}_{j}" for c, j in zip(kc_creator, creator, strict=True)],
                [f"topic:{c}" for c in range(k) for _ in range(3)],
            ]
        )
        triples = pd.DataFrame({"head_id": heads, "relation_id": rels, "tail_id": tails})
        link = pd.DataFrame({"item_id": item_ids, "entity_id": ent})

    # ---- modalities
    embs = {}
    for m, d in mods.items():
        base = item_cluster if m in informative else decoy_cluster
        centroids = rng.normal(size=(k, int(d)))
        embs[m] = (
            item_ids,
            (centroids[base] + modality_noise * rng.normal(size=(n_items, int(d)))).astype(
                np.float32
            ),
        )

    ds = Dataset.from_frames(
        inter,
        users=users_df,
        items=items_df,
        kg_triples=triples,
        kg_link=link,
        user_feature_types={"segment": "token"},
        item_feature_types={
            "title": "token",
            "description": "token",
            "genre": "token",
            "year": "float",
        },
        text_fields=("title", "description"),
        item_embeddings=embs,
        name=name or f"synthetic-{seed}",
    )
    if not return_truth:
        return ds
    # the Dataset's id maps follow first appearance in the interactions: reorder the truth
    u_order = np.array([int(x[1:]) for x in ds.users.ids])
    i_order = np.array([int(x[1:]) for x in ds.items.ids])
    truth = SyntheticTruth(
        user_cluster=user_cluster[u_order],
        item_cluster=item_cluster[i_order],
        decoy_cluster=decoy_cluster[i_order],
        informative=tuple(informative),
    )
    return ds, truth


def power_law_shape(n_interactions: int) -> tuple[int, int]:
    """(users, items) for ``n_interactions`` in MovieLens-25M's shape.

    Users grow with interactions (about 154 per user, as in ML-25M); items with the square
    root, so 25M gives ML-25M's 162k x 59k, 1M gives 6.5k x 11.8k.
    """
    n, u, i = _ML25M
    return max(10, round(u * n_interactions / n)), max(10, round(i * (n_interactions / n) ** 0.5))


def make_power_law(
    n_interactions: int,
    seed: int = 0,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    item_exponent: float = 1.0,
    user_sigma: float = 1.2,
    name: str | None = None,
) -> Dataset:
    """A large implicit/explicit dataset with power-law popularity, built in vectorised numpy.

    Item popularity is Zipf-like (rank ``r`` drawn with weight ``1 / (r + 10) ** item_exponent``),
    user activity lognormal (``user_sigma``), each user has at least 2 interactions; (user,
    item) pairs are unique, timestamps uniform over 2015-2019, ratings are 0.5-5 in half steps
    tilted towards 3-4. Ids are ``u<k>`` / ``i<k>``. 25M rows take about a minute and ~3 GB.

    Args:
        n_interactions: exact number of rows.
        seed: the only source of randomness.
        n_users, n_items: default :func:`power_law_shape`.
    """
    if n_interactions < 20:
        raise ValueError(f"n_interactions must be >= 20, got {n_interactions}")
    du, di = power_law_shape(n_interactions)
    n_users, n_items = n_users or du, n_items or di
    if n_interactions > 0.5 * n_users * n_items:
        raise ValueError(f"{n_interactions} interactions do not fit {n_users} x {n_items} sparsely")
    rng = np.random.default_rng(seed)
    act = rng.lognormal(0.0, user_sigma, n_users)
    item_w = 1.0 / (np.arange(n_items) + 10.0) ** item_exponent
    item_perm = rng.permutation(n_items)  # popular items are not the low ids
    item_p = np.empty(n_items)
    item_p[item_perm] = item_w / item_w.sum()
    keys = np.empty(0, dtype=np.int64)
    base = np.repeat(np.arange(n_users, dtype=np.int64), 2)  # every user at least twice
    keep_rate = 1.0
    while len(keys) < n_interactions:
        extra = int((n_interactions - len(keys)) / keep_rate * 1.02) + 1000
        u = rng.choice(n_users, size=extra, p=act / act.sum())
        if not len(keys):
            u = np.r_[base, u]
        i = rng.choice(n_items, size=len(u), p=item_p)
        before = len(keys)
        keys = pd.unique(np.r_[keys, u * n_items + i])  # unique pairs, first draw wins (hash, in order)
        keep_rate = max((len(keys) - before) / len(u), 0.05)
    keys = keys[:n_interactions]
    uidx, iidx = keys // n_items, keys % n_items
    ts = 1_420_070_400 + rng.integers(0, 5 * 365 * 86_400, n_interactions)  # 2015-2019
    rating = rng.choice(np.arange(1, 11) / 2, size=n_interactions, p=_RATING_P)
    users = IdMap(np.char.add("u", np.arange(n_users).astype(str)), name="user")
    items = IdMap(np.char.add("i", np.arange(n_items).astype(str)), name="item")
    return Dataset(
        users=users,
        items=items,
        user_idx=uidx,
        item_idx=iidx,
        rating=rating,
        timestamp=ts,
        name=name or f"power-law-{n_interactions}",
    )


_RATING_P = np.array([1, 3, 2, 7, 5, 20, 12, 25, 8, 17], dtype=np.float64)
_RATING_P /= _RATING_P.sum()
