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

__all__ = ["make_synthetic", "SyntheticTruth", "SIDE_SOURCES"]

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
