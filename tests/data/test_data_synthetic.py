"""Synthetic data: deterministic, with the planted cluster signal where it should be (and only there)."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import make_synthetic
from fusionrec.data.synthetic import _topic_words


def _centroid_accuracy(x: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows closest to the mean of their own label (1.0 = labels fully recoverable)."""
    ks = np.unique(labels)
    cents = np.stack([x[labels == k].mean(0) for k in ks])
    d = ((x[:, None, :] - cents[None]) ** 2).sum(-1)
    return float((ks[d.argmin(1)] == labels).mean())


def test_deterministic_under_seed() -> None:
    a = make_synthetic(50, 30, 6, seed=11)
    b = make_synthetic(50, 30, 6, seed=11)
    c = make_synthetic(50, 30, 6, seed=12)
    assert a.interactions_frame().equals(b.interactions_frame())
    assert a.item_features.equals(b.item_features)
    np.testing.assert_array_equal(a.item_embeddings["image"], b.item_embeddings["image"])
    assert a.kg.triples_frame().equals(b.kg.triples_frame())
    assert not a.interactions_frame().equals(c.interactions_frame())


def test_shape_and_parts() -> None:
    ds, truth = make_synthetic(
        40, 24, 5, seed=0, n_clusters=3, modalities={"image": 8, "audio": 4}, return_truth=True
    )
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (40, 24, 200)
    assert ds.matrix().sum() == 200  # distinct items per user
    assert ds.item_embeddings["image"].shape == (24, 8) and ds.item_embeddings["audio"].shape == (
        24,
        4,
    )
    assert ds.kg is not None and ds.kg.n_linked_items == 24
    assert ds.text_fields == ("title", "description")
    assert set(ds.item_feature_types) == {"title", "description", "genre", "year"}
    assert np.bincount(truth.item_cluster).tolist() == [8, 8, 8]
    assert truth.informative == ("features", "text", "kg", "image", "audio")


def test_interactions_follow_clusters() -> None:
    ds, t = make_synthetic(300, 80, 8, seed=1, purity=0.9, return_truth=True)
    in_cluster = t.user_cluster[ds.user_idx] == t.item_cluster[ds.item_idx]
    assert 0.85 < in_cluster.mean() < 0.95
    assert (ds.rating[in_cluster] >= 4).all() and (ds.rating[~in_cluster] <= 3).all()


def test_all_sources_reveal_clusters_by_default() -> None:
    ds, t = make_synthetic(
        20, 80, 3, seed=2, feature_noise=0.0, modality_noise=0.3, return_truth=True
    )
    for m in ("image", "audio"):
        assert _centroid_accuracy(ds.item_embeddings[m], t.item_cluster) == 1.0
    genre = ds.item_features["genre"].str.replace("genre", "").astype(int).to_numpy()
    np.testing.assert_array_equal(genre, t.item_cluster)
    for j, text in enumerate(ds.item_features["description"]):
        words = set(text.split()) - {"a", "story", "of"}
        assert words <= set(_topic_words(int(t.item_cluster[j])))
    kg = ds.kg.triples_frame()
    topic = kg[kg.relation_id == "has_topic"].set_index("head_id")["tail_id"]
    ents = ds.kg.entities.to_ids(ds.kg.item_entity)
    assert [topic[e] for e in ents] == [f"topic:{c}" for c in t.item_cluster]


def test_only_signal_modality() -> None:
    ds, t = make_synthetic(
        20, 200, 3, seed=3, signal="image", n_clusters=4, feature_noise=0.0, return_truth=True
    )
    assert t.informative == ("image",)
    assert _centroid_accuracy(ds.item_embeddings["image"], t.item_cluster) > 0.95
    assert _centroid_accuracy(ds.item_embeddings["audio"], t.decoy_cluster) > 0.95
    # the other sources show the decoy, which is unrelated to the interaction clusters
    genre = ds.item_features["genre"].str.replace("genre", "").astype(int).to_numpy()
    np.testing.assert_array_equal(genre, t.decoy_cluster)
    agree = (t.decoy_cluster == t.item_cluster).mean()
    assert agree < 0.45  # ~1/4 by chance with 4 clusters
    assert _centroid_accuracy(ds.item_embeddings["audio"], t.item_cluster) < 0.6


def test_noise_knob_weakens_signal() -> None:
    _, t = make_synthetic(10, 200, 2, seed=4, return_truth=True)
    clean = make_synthetic(10, 200, 2, seed=4, modality_noise=0.1)
    noisy = make_synthetic(10, 200, 2, seed=4, modality_noise=3.0)
    assert _centroid_accuracy(clean.item_embeddings["image"], t.item_cluster) == 1.0
    assert _centroid_accuracy(noisy.item_embeddings["image"], t.item_cluster) < 0.9


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="signal must be"):
        make_synthetic(5, 5, 2, seed=0, signal="video")
    with pytest.raises(ValueError, match="n_clusters"):
        make_synthetic(5, 5, 2, seed=0, n_clusters=6)
