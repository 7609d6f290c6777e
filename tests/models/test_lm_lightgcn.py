"""lm_lightgcn: conformance, cold items ranked by text for the users who read alike, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _lm_data import make_groups

from fusionrec.models import get_model, load_model
from fusionrec.models.lightgcn import LightGCNModule
from fusionrec.models.lm_lightgcn import LMLightGCN
from fusionrec.testing import check_recommender


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    from fusionrec.encoders import encode_items

    ds, cs, cr = make_groups()
    cache = tmp_path_factory.mktemp("emb")
    return ds.with_item_embedding("text", encode_items(ds, cache_dir=cache)), cs, cr


FAST = {"epochs": 3, "batch_size": 16, "text_edges": 3, "device": "cpu"}


def test_conformance_on_the_shared_toy_data():
    check_recommender(LMLightGCN, FAST)


VARIANTS = [
    {"fusion": "add", "text_edges": 0},
    {"fusion": "gate", "text_edges": 3},
    {"fusion": "none", "text_edges": 3},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['fusion']}-{v['text_edges']}")
def test_conformance(groups, variant):
    ds, _, _ = groups
    check_recommender(LMLightGCN, {**FAST, **variant}, ds, k=2)


def _own_group_rate(model, ds, cold_s, cold_r) -> float:
    s = model.score(ds.users.ids, list(cold_s) + list(cold_r))
    space_user = np.array([int(u[1:]) < 8 for u in ds.users.ids])
    return float(((s.argmax(1) < len(cold_s)) == space_user).mean())


def _cold_above_other_group(model, ds, cold_s, cold_r) -> float:
    """Share of users for whom every cold item of their group outscores every item (warm or
    cold) of the other group."""
    full = model.score(ds.users.ids)
    is_space = np.array([i.startswith("s") for i in ds.items.ids])
    cs, cr = ds.items.to_idx(np.array(cold_s)), ds.items.to_idx(np.array(cold_r))
    ok = [
        full[u, cs].min() > full[u, ~is_space].max()
        if int(uid[1:]) < 8
        else full[u, cr].min() > full[u, is_space].max()
        for u, uid in enumerate(ds.users.ids)
    ]
    return float(np.mean(ok))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['fusion']}-{v['text_edges']}")
def test_cold_items_rank_for_textually_similar_users(groups, variant):
    """Items with no interactions: each user's best cold item is of their own taste group, and
    every cold item of their group outscores every item (warm or cold) of the other group;
    through layer-0 text fusion, through text edges, or both."""
    ds, cold_s, cold_r = groups
    params = {"epochs": 60, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    m = get_model("lm_lightgcn")(**params, **variant).fit(ds, seed=0)
    assert _own_group_rate(m, ds, cold_s, cold_r) == 1.0
    assert _cold_above_other_group(m, ds, cold_s, cold_r) == 1.0
    # plain LightGCN has nothing to go on for cold items
    plain = get_model("lightgcn")(**params).fit(ds, seed=0)
    assert _cold_above_other_group(plain, ds, cold_s, cold_r) <= 0.25


def test_text_edges_link_each_item_to_its_nearest_texts():
    from fusionrec.models.lm_lightgcn import text_augmented_adjacency, text_neighbours

    text = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [np.nan, 0.0]])
    nb = text_neighbours(text, 1)
    assert nb[:, 0].tolist() == [1, 0, 3, 2, -1]  # the item without text has no neighbour
    r = np.array([[1, 0, 0, 0, 0], [0, 0, 1, 0, 0]])
    a = text_augmented_adjacency(r, nb, 2.0).toarray()
    np.testing.assert_allclose(a, a.T)
    # item 0 (node 2): one interaction edge (user 0) + one text edge of weight 2 to item 1
    deg = np.array([1, 1, 3, 2, 3, 2, 0])
    assert a[2, 3] == pytest.approx(2.0 / np.sqrt(deg[2] * deg[3]))
    assert a[0, 2] == pytest.approx(1.0 / np.sqrt(deg[0] * deg[2]))
    assert a[2, 4] == 0 and not a[6].any()  # no text edge across groups; no-text item isolated


def test_negatives_are_warm_and_save_load(groups, tmp_path):
    ds, cold_s, cold_r = groups
    m = LMLightGCN(epochs=2, batch_size=16, num_negatives=4, text_edges=3, device="cpu")
    m.fit(ds, seed=0)
    rng = np.random.default_rng(0)
    cold = set(ds.items.to_idx(np.array(list(cold_s) + list(cold_r))).tolist())
    negs = np.concatenate([b["neg"].numpy().ravel() for b in m.batches(ds, rng)])
    assert len(negs) == 4 * ds.n_interactions and not (set(negs.tolist()) & cold)
    m.save(tmp_path / "m")
    m2 = load_model(tmp_path / "m")
    np.testing.assert_allclose(m2.score(ds.users.ids), m.score(ds.users.ids), atol=1e-5)


def test_text_id_offsets_project_text_on_its_principal_directions():
    from fusionrec.models.lm_lightgcn import text_id_offsets

    # items 0, 1 read alike, item 2 reads the other way, item 3 has no text
    text = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [np.nan] * 3])
    r = np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])  # user 2 has no training items
    off = text_id_offsets(text, r, 2, 0.1)
    assert off.shape == (3 + 4, 2)
    users, items = off[:3], off[3:]
    np.testing.assert_allclose(items[0], items[1])
    # one principal direction separates the two texts (the second carries nothing)
    np.testing.assert_allclose(items[:3, 1], 0, atol=1e-7)
    assert items[0, 0] * items[2, 0] < 0 and abs(items[0, 0]) < abs(items[2, 0])
    assert not items[3].any() and not users[2].any()
    assert items[:3].std() == pytest.approx(0.1, rel=1e-5)
    assert users[:2].std() == pytest.approx(0.1, rel=1e-5)
    # a user's offset points along the mean of their items' offsets
    assert np.sign(users[0, 0]) == np.sign(items[0, 0]) and np.sign(users[1, 0]) == np.sign(
        items[2, 0]
    )


def test_user_item_text_is_the_mean_of_the_users_normalised_texts():
    from fusionrec.models.lm_lightgcn import user_item_text

    text = np.array([[3.0, 0.0], [1.0, 0.0], [0.0, 2.0], [np.nan, 0.0]])
    users, items = user_item_text(text, np.array([[1, 0, 1, 0], [0, 0, 0, 0]]))
    # centred on the mean of the items with text, (4/3, 2/3), then unit length
    c = text[:3] - np.array([4 / 3, 2 / 3])
    np.testing.assert_allclose(items[:3], c / np.linalg.norm(c, axis=1, keepdims=True), atol=1e-6)
    assert not items[3].any()
    np.testing.assert_allclose(users[0], (items[0] + items[2]) / 2, atol=1e-6)
    assert not users[1].any()


def test_text_score_term_adds_beta_times_text_similarity_and_ranks_cold_items(groups, tmp_path):
    """With no text in layer 0 and no text edges, cold items get no LightGCN signal; the text
    score term alone puts each user's own group's cold item first."""
    from fusionrec.models.lm_lightgcn import user_item_text

    ds, cold_s, cold_r = groups
    params = {"epochs": 30, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    m = LMLightGCN(**params, fusion="none", text_score_weight=2.0).fit(ds, seed=0)
    assert _own_group_rate(m, ds, cold_s, cold_r) == 1.0
    base = LMLightGCN(**params, fusion="none").fit(ds, seed=0)
    ut, it = user_item_text(ds.item_embeddings["text"], m.seen_)
    np.testing.assert_allclose(
        m.score(ds.users.ids), base.score(ds.users.ids) + 2.0 * ut @ it.T, atol=1e-4
    )
    m.save(tmp_path / "m")
    np.testing.assert_allclose(
        load_model(tmp_path / "m").score(ds.users.ids), m.score(ds.users.ids), atol=1e-5
    )


def test_text_initialised_ids_start_from_the_text_offsets_and_survive_save_load(groups, tmp_path):
    from fusionrec.models.lm_lightgcn import text_id_offsets

    ds, _, _ = groups
    m = LMLightGCN(epochs=2, batch_size=16, fusion="none", id_init="text", device="cpu")
    m.fit(ds, seed=0)
    mod = m.module_
    want = text_id_offsets(ds.item_embeddings["text"], m.seen_, 64, 0.1)
    np.testing.assert_allclose(mod.id_offset.numpy(), want, atol=1e-6)
    np.testing.assert_allclose(
        mod.id_rows().detach().numpy(), mod.embedding.weight.detach().numpy() + want, atol=1e-6
    )
    m.save(tmp_path / "m")
    np.testing.assert_allclose(
        load_model(tmp_path / "m").score(ds.users.ids), m.score(ds.users.ids), atol=1e-5
    )


def test_learned_text_score_weight_is_trained_from_zero_and_used_in_scores(groups, tmp_path):
    from fusionrec.models.lm_lightgcn import user_item_text

    ds, _, _ = groups
    m = LMLightGCN(
        epochs=5, batch_size=16, fusion="none", text_score_learned=True, device="cpu"
    ).fit(ds, seed=0)
    beta = m.module_.beta
    assert isinstance(beta, torch.nn.Parameter) and float(beta.detach()) > 0.01  # moved from 0
    ut, it = user_item_text(ds.item_embeddings["text"], m.seen_)
    idx = np.arange(ds.n_users)
    lightgcn_part = LightGCNModule.score(m.module_, torch.as_tensor(idx), None).numpy()
    np.testing.assert_allclose(
        m.score_indices(idx), lightgcn_part + float(beta.detach()) * ut @ it.T, atol=1e-4
    )
    m.save(tmp_path / "m")
    np.testing.assert_allclose(
        load_model(tmp_path / "m").score_indices(idx), m.score_indices(idx), atol=1e-5
    )


def test_plain_negatives_follow_lightgcns_draws_and_may_be_cold(groups):
    from fusionrec.training.batching import cached_sampler, pair_batches

    ds, cold_s, cold_r = groups
    m = LMLightGCN(epochs=1, batch_size=16, num_negatives=4, warm_negatives=False, device="cpu")
    m.fit(ds, seed=0)
    got = np.concatenate(
        [b["neg"].numpy().ravel() for b in m.batches(ds, np.random.default_rng(0))]
    )
    plain = pair_batches(ds, np.random.default_rng(0), 16, 4, m.device_, cached_sampler(m, ds))
    np.testing.assert_array_equal(got, np.concatenate([b["neg"].numpy().ravel() for b in plain]))
    cold = set(ds.items.to_idx(np.array(list(cold_s) + list(cold_r))).tolist())
    assert set(got.tolist()) & cold
