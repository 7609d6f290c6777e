"""CKE, KGAT and multimodal MF: conformance, the joint loss, and planted-signal known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from fusionrec.data import Dataset, split
from fusionrec.data.modalities import attach_modality
from fusionrec.data.synthetic import make_synthetic
from fusionrec.errors import ConfigError
from fusionrec.evaluation import Evaluator
from fusionrec.models import get_model
from fusionrec.models.kg.kge import LossSchedule
from fusionrec.testing import check_recommender, toy_dataset

FAST = {"epochs": 2, "batch_size": 128, "embedding_dim": 8, "device": "cpu", "patience": 0}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mm_mf", {**FAST, "modalities": ["image"], "fusion": "gate"}),
        ("cke", {**FAST, "rel_dim": 4, "modalities": ["image"]}),
        ("kgat", {**FAST, "rel_dim": 4, "hidden_dims": [8, 4]}),
    ],
)
def test_conformance(name, params):
    report = check_recommender(get_model(name), params, toy_dataset())
    assert report.passed


def _batch(model, ds):
    return next(iter(model.batches(ds, np.random.default_rng(0))))


@pytest.mark.parametrize("name", ["cke", "kgat"])
def test_joint_loss_has_each_term_and_respects_weights(name):
    ds = toy_dataset()
    extra = {"rel_dim": 4} | ({"hidden_dims": [8]} if name == "kgat" else {})
    m = get_model(name)(**FAST, **extra, loss_weights={"kg": 0.5, "reg": 0.01}).fit(ds, seed=0)
    rec = m.history_.records[-1]
    assert {"loss_rec", "loss_kg", "loss_reg"} <= set(rec)
    m._epoch = 0
    batch = _batch(m, ds)
    mod = m.module_
    mod.eval()  # no dropout: the same batch gives the same raw losses
    weighted = mod.loss(batch)
    assert set(weighted) == {"rec", "kg", "reg"}
    mod.weights = {"rec": 1.0, "kg": 1.0, "reg": 1.0}
    raw = mod.loss(batch)
    for k, w in {"rec": 1.0, "kg": 0.5, "reg": 0.01}.items():
        assert weighted[k].item() == pytest.approx(w * raw[k].item(), rel=1e-5)
    # a zero weight switches the term off entirely
    m0 = get_model(name)(**FAST, **extra, loss_weights={"kg": 0.0}).fit(ds, seed=0)
    assert "loss_kg" not in m0.history_.records[-1]


def test_loss_schedule_warmup():
    s = LossSchedule(kind="linear", start=0.0, warmup_epochs=4)
    assert [s.factor(e) for e in (1, 2, 3, 5, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert [LossSchedule(kind="step", warmup_epochs=2).factor(e) for e in (1, 2, 3)] == [
        0.0,
        0.0,
        1.0,
    ]
    cfg = get_model("cke").Config(
        loss_weights={"kg": 2.0}, loss_schedules={"kg": {"warmup_epochs": 2}}
    )
    assert (
        cfg.weights_at(1)["kg"] == 0.0
        and cfg.weights_at(2)["kg"] == 1.0
        and cfg.weights_at(3)["kg"] == 2.0
    )
    m = get_model("cke")(
        **{**FAST, "epochs": 3},
        rel_dim=4,
        loss_weights={"kg": 2.0},
        loss_schedules={"kg": {"warmup_epochs": 2}},
    )
    m.fit(toy_dataset(), seed=0)
    kg = [r["loss_kg"] for r in m.history_.records]
    assert kg[0] == 0.0 and kg[1] > 0 and kg[2] > kg[1]


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown loss term"):
        get_model("mm_mf")(loss_weights={"kg": 1.0})  # mm_mf has no KG term
    with pytest.raises(ConfigError, match="modality 'text' is not attached"):
        get_model("mm_mf")(**FAST, modalities=["text"]).fit(toy_dataset())
    ds = toy_dataset()
    no_kg = Dataset.from_frames(ds.interactions_frame())
    with pytest.raises(ConfigError, match="knowledge graph"):
        get_model("kgat")(**FAST).fit(no_kg)


def test_cke_handles_unlinked_items():
    ds = toy_dataset()
    kg = ds.kg
    link = pd.DataFrame(
        {"item_id": ds.items.ids[:10], "entity_id": kg.entities.to_ids(kg.item_entity[:10])}
    )
    part = Dataset.from_frames(ds.interactions_frame(), kg_triples=kg.triples_frame(), kg_link=link)
    assert part.kg.n_linked_items == 10
    m = get_model("cke")(**FAST, rel_dim=4).fit(part, seed=0)
    assert np.isfinite(m.score_indices(np.arange(3))).all()
    m2 = get_model("kgat")(**FAST, rel_dim=4, hidden_dims=[8]).fit(part, seed=0)
    assert np.isfinite(m2.score_indices(np.arange(3))).all()


def _shuffled_synthetic(signal: str) -> tuple[Dataset, np.ndarray]:
    """make_synthetic with item indices in a random order (ties among equal scores are broken by
    index, so the order must say nothing about clusters or popularity), and the modality
    attached through ``attach_modality`` (by external item id)."""
    raw = make_synthetic(
        n_users=200,
        n_items=120,
        n_interactions_per_user=15,
        seed=0,
        signal=signal,
        modalities=("image",),
        kg=False,
    )
    inter = raw.interactions_frame()
    rank = dict(zip(raw.items.ids, np.random.default_rng(1).permutation(raw.n_items), strict=True))
    inter = inter.iloc[np.argsort(inter["item_id"].map(rank).to_numpy(), kind="stable")]
    ds = Dataset.from_frames(inter, name="synthetic-shuffled")
    ds = attach_modality(ds, "image", (raw.items.ids, raw.item_embeddings["image"]))
    return ds, raw.item_embeddings["image"]


def test_modality_alone_determines_preference():
    """Cold-item split: test items never occur in training, so only the image vector can tell
    which of them a user likes. Ranking among the cold items, ID-only MF is near random and the
    fused model far above it."""
    ds, _ = _shuffled_synthetic("image")
    s = split(ds, "cold-item", (0.7, 0.0, 0.3), seed=0)
    warm = np.flatnonzero(s.train.item_popularity() > 0)
    n_u = ds.n_users
    warm_mask = sp.csr_matrix(
        (
            np.ones(n_u * len(warm), np.float32),
            (np.repeat(np.arange(n_u), len(warm)), np.tile(warm, n_u)),
        ),
        shape=(n_u, ds.n_items),
    )
    ev = Evaluator(metrics=("ndcg",), ks=(10,))

    class Random:
        def score_indices(self, u, i=None):
            return np.random.default_rng(0).random((len(u), ds.n_items)).astype(np.float32)

    params = dict(embedding_dim=16, epochs=30, lr=0.01, batch_size=256, patience=0, device="cpu")
    rand = ev.evaluate(Random(), s.test, exclude=(warm_mask,))["ndcg@10"]
    id_only = ev.evaluate(
        get_model("mm_mf")(**params).fit(s.train, seed=0), s.test, exclude=(warm_mask,)
    )["ndcg@10"]
    fused = ev.evaluate(
        get_model("mm_mf")(**params, modalities=["image"]).fit(s.train, seed=0),
        s.test,
        exclude=(warm_mask,),
    )["ndcg@10"]
    assert abs(id_only - rand) < 0.08, (id_only, rand)
    assert fused > id_only + 0.2 and fused > 2 * rand, (fused, id_only, rand)


def test_mm_mf_missing_modality_rows_and_save_load(tmp_path):
    ds = toy_dataset()
    img = np.array(ds.item_embeddings["image"])
    img[::3] = np.nan  # a third of the items have no image
    ds2 = ds.with_item_embedding("image", img)
    m = get_model("mm_mf")(**FAST, modalities=["image"], fusion="attention").fit(ds2, seed=0)
    sc = m.score_indices(np.arange(5))
    assert np.isfinite(sc).all()
    m.save(tmp_path / "m")
    from fusionrec.models import load_model

    np.testing.assert_allclose(
        load_model(tmp_path / "m").score_indices(np.arange(5)), sc, rtol=1e-5, atol=1e-6
    )


def test_kgat_eval_cache_matches_fresh_propagation():
    ds = toy_dataset()
    m = get_model("kgat")(**FAST, rel_dim=4, hidden_dims=[8]).fit(ds, seed=0)
    a = m.score_indices(np.arange(4))
    m.module_._cache = None
    b = m.score_indices(np.arange(4))
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert m.module_.att.shape[0] == len(m.edges_)
    # attention weights into each node sum to one
    s = torch.zeros(m.module_.n_nodes).index_add_(0, m.module_.dst, m.module_.att)
    has_in = torch.zeros(m.module_.n_nodes, dtype=torch.bool)
    has_in[m.module_.dst] = True
    np.testing.assert_allclose(s[has_in].numpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("layers", [[8], [8, 4], [6, 4, 4]])
def test_kgat_row_propagation_equals_full_propagation(layers):
    """KGAT propagates only what the user and item rows need (propagation_plan); in eval mode
    this equals the full-graph propagation at those rows, for any depth."""
    ds = toy_dataset()
    m = get_model("kgat")(**FAST, rel_dim=4, hidden_dims=layers).fit(ds, seed=0)
    mod = m.module_
    mod.eval()
    with torch.no_grad():
        full = mod.prop(mod.node.weight, mod.adjacency())
        rows = mod.propagated()
    torch.testing.assert_close(rows[mod.user_row], full[: mod.n_users])
    torch.testing.assert_close(rows[mod.item_row], full[mod.item_node])
    plan = mod._plan_np
    assert (
        len(plan) == len(layers)
        and len(plan[-1]["rows"]) == len(np.unique(mod.item_node)) + mod.n_users
    )
