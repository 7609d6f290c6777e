"""lm_lightgcn: conformance, cold items ranked by text for the users who read alike, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.models import get_model, load_model
from fusionrec.models.graph.lightgcn import LightGCNModule
from fusionrec.models.text.lm_lightgcn import LMLightGCN
from fusionrec.testing import check_recommender

FAST = {"epochs": 3, "batch_size": 16, "text_edges": 3, "device": "cpu"}


def test_conformance_on_the_shared_toy_data():
    check_recommender(LMLightGCN, FAST)


# the text paths without the text-neighbour read-out of cold items, ID init or score term
TEXT_ONLY = {
    "cold_items": "fusion",
    "id_init": "random",
    "text_score_weight": 0.0,
    "warm_negatives": True,
}
VARIANTS = [
    {**TEXT_ONLY, "fusion": "add", "text_edges": 0},
    {**TEXT_ONLY, "fusion": "gate", "text_edges": 3},
    {**TEXT_ONLY, "fusion": "none", "text_edges": 3},
    {"fusion": "none", "text_edges": 0, "cold_items": "text_neighbours"},
]


def _vid(v: dict) -> str:
    return f"{v['fusion']}-{v['text_edges']}-{v.get('cold_items')}"


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
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


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_cold_items_rank_for_textually_similar_users(groups, variant):
    """Items with no interactions: each user's best cold item is of their own taste group, and
    every cold item of their group outscores every item (warm or cold) of the other group;
    through layer-0 text fusion, through text edges, both, or the warm text neighbours'
    read-out."""
    ds, cold_s, cold_r = groups
    params = {"epochs": 60, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    m = get_model("lm_lightgcn")(**params, **variant).fit(ds, seed=0)
    assert _own_group_rate(m, ds, cold_s, cold_r) == 1.0
    assert _cold_above_other_group(m, ds, cold_s, cold_r) == 1.0
    # plain LightGCN has nothing to go on for cold items
    plain = get_model("lightgcn")(**params).fit(ds, seed=0)
    assert _cold_above_other_group(plain, ds, cold_s, cold_r) <= 0.25


def test_text_edges_link_each_item_to_its_nearest_texts():
    from fusionrec.models.text.lm_lightgcn import text_augmented_adjacency
    from fusionrec.models.text.toolkit import text_neighbours

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
    m = LMLightGCN(
        epochs=2, batch_size=16, num_negatives=4, text_edges=3, warm_negatives=True, device="cpu"
    )
    m.fit(ds, seed=0)
    rng = np.random.default_rng(0)
    cold = set(ds.items.to_idx(np.array(list(cold_s) + list(cold_r))).tolist())
    negs = np.concatenate([b["neg"].numpy().ravel() for b in m.batches(ds, rng)])
    assert len(negs) == 4 * ds.n_interactions and not (set(negs.tolist()) & cold)
    m.save(tmp_path / "m")
    m2 = load_model(tmp_path / "m")
    np.testing.assert_allclose(m2.score(ds.users.ids), m.score(ds.users.ids), atol=1e-5)


def test_text_id_offsets_project_text_on_its_principal_directions():
    from fusionrec.models.text.toolkit import text_id_offsets

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
    from fusionrec.models.text.toolkit import user_item_text

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
    from fusionrec.models.text.toolkit import user_item_text

    ds, cold_s, cold_r = groups
    params = {"epochs": 30, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    plain = {"fusion": "none", "cold_items": "fusion"}
    m = LMLightGCN(**params, **plain, text_score_weight=2.0).fit(ds, seed=0)
    assert _own_group_rate(m, ds, cold_s, cold_r) == 1.0
    base = LMLightGCN(**params, **plain, text_score_weight=0.0).fit(ds, seed=0)
    ut, it = user_item_text(ds.item_embeddings["text"], m.seen_)
    np.testing.assert_allclose(
        m.score(ds.users.ids), base.score(ds.users.ids) + 2.0 * ut @ it.T, atol=1e-4
    )
    m.save(tmp_path / "m")
    np.testing.assert_allclose(
        load_model(tmp_path / "m").score(ds.users.ids), m.score(ds.users.ids), atol=1e-5
    )


def test_text_initialised_ids_start_from_the_text_offsets_and_survive_save_load(groups, tmp_path):
    from fusionrec.models.text.toolkit import text_id_offsets

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
    from fusionrec.models.text.toolkit import user_item_text

    ds, _, _ = groups
    m = LMLightGCN(
        epochs=5,
        batch_size=16,
        fusion="none",
        text_score_weight=0.0,
        text_score_learned=True,
        device="cpu",
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


def test_warm_text_neighbours_weights_the_nearest_warm_texts_by_softmax():
    from fusionrec.models.text.toolkit import warm_text_neighbours

    # unit vectors with mean zero (centring leaves them as they are); item 4 has no text
    text = np.array([[1.0, 0.0], [0.6, 0.8], [-0.6, -0.8], [-1.0, 0.0], [np.nan, 0.0]])
    warm = np.array([False, True, True, True, True])
    rows, nbrs, wts = warm_text_neighbours(text, warm, 2, 0.5)
    assert rows.tolist() == [0]  # the cold item with text; warm and text-less items get none
    # cosines to the warm items 1, 2, 3: 0.6, -0.6, -1 -> the two nearest are 1 and 2
    order = np.argsort(nbrs[0])
    assert nbrs[0, order].tolist() == [1, 2]
    e = np.exp(np.array([0.6, -0.6]) / 0.5)
    np.testing.assert_allclose(wts[0, order], e / e.sum(), rtol=1e-6)
    # more neighbours asked than warm items with text: the extra slots weigh nothing
    rows, nbrs, wts = warm_text_neighbours(text, warm, 5, 0.5)
    assert sorted(nbrs[0, wts[0] > 0].tolist()) == [1, 2, 3] and wts[0].sum() == pytest.approx(1)
    assert (wts[0] > 0).sum() == 3
    rows, _, _ = warm_text_neighbours(text, np.ones(5, bool), 2, 0.5)
    assert len(rows) == 0  # nothing cold


def test_cold_items_read_out_the_weighted_mean_of_their_warm_text_neighbours(groups, tmp_path):
    ds, cold_s, cold_r = groups
    params = {"epochs": 20, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    m = LMLightGCN(**params, fusion="none", cold_items="text_neighbours", cold_neighbours=3)
    m.fit(ds, seed=0)
    rows, nbrs, wts = m.cold_
    cold = ds.items.to_idx(np.array(list(cold_s) + list(cold_r)))
    assert sorted(rows.tolist()) == sorted(cold.tolist()) and nbrs.shape == (4, 3)
    assert m.warm_[nbrs].all()
    # each cold item's neighbours are of its own group (its text reads like theirs)
    for r, nb in zip(rows, nbrs, strict=True):
        assert {ds.items.ids[i][0] for i in nb} == {ds.items.ids[r][0]}
    v = m.item_vectors()
    assert float(m.module_.cold_scale) == 1.0  # no validation set: weight 1
    want = (wts[..., None] * v[nbrs]).sum(1)
    np.testing.assert_allclose(v[rows], want, atol=1e-6)
    assert np.abs(v[rows]).sum() > 0
    assert _own_group_rate(m, ds, cold_s, cold_r) == 1.0
    m.save(tmp_path / "m")
    m2 = load_model(tmp_path / "m")
    np.testing.assert_allclose(m2.score(ds.users.ids), m.score(ds.users.ids), atol=1e-5)
    np.testing.assert_allclose(m2.item_vectors()[rows], want, atol=1e-5)


def test_a_cold_copy_of_a_popular_item_scores_and_ranks_like_it(groups):
    """A cold item whose text equals a popular warm item's: with one neighbour it reads out that
    item's embedding (equal scores for every user); with three neighbours it is recommended to
    that item's users near the top (the default 30 would be the whole of this toy catalogue)."""
    ds, cold_s, _ = groups
    pop = ds.item_popularity()
    space = [i for i in range(ds.n_items) if ds.items.ids[i].startswith("s") and pop[i] > 0]
    p = max(space, key=lambda i: pop[i])
    c = int(ds.items.to_idx(np.array([cold_s[0]]))[0])
    text = np.array(ds.item_embeddings["text"], copy=True)
    text[c] = text[p]
    d = ds.with_item_embedding("text", text)
    params = {"epochs": 20, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    base = {"fusion": "none", "cold_items": "text_neighbours", "text_score_weight": 1.0}
    m1 = LMLightGCN(**params, **base, cold_neighbours=1).fit(d, seed=0)
    s = m1.score_indices(np.arange(d.n_users))
    np.testing.assert_allclose(s[:, c], s[:, p], atol=1e-5)
    m = LMLightGCN(**params, **base, cold_neighbours=3, cold_temperature=0.1).fit(d, seed=0)
    users = np.flatnonzero(np.asarray(m.seen_[:, p].todense()).ravel() > 0)
    assert len(users) >= 2
    top, _ = m.recommend_indices(users, k=2)
    assert all(c in r for r in top)
    # without the fallback (fusion "none": the cold item has only the text term) it scores
    # below every warm item of the group for those users
    m0 = LMLightGCN(**params, fusion="none", text_score_weight=1.0, cold_items="fusion")
    m0.fit(d, seed=0)
    s0 = m0.score_indices(users)
    warm_space = [i for i in space if i != p]
    assert (s0[:, c] < s0[:, warm_space].min(1)).mean() >= 0.5


def test_cold_weight_is_chosen_on_validation_and_kept_after_load(groups, tmp_path):
    """Validation interactions on the cold items of each user's own group make a positive
    weight win; a fixed ``cold_weight`` scales the borrowed embeddings as given."""
    import pandas as pd

    from fusionrec.data import Dataset
    from fusionrec.models.text.toolkit import COLD_WEIGHT_GRID

    ds, cold_s, cold_r = groups
    extra = [(u, i, 1000.0) for u in ds.users.ids for i in (cold_s if int(u[1:]) < 8 else cold_r)]
    frame = pd.concat(
        [
            ds.interactions_frame()[["user_id", "item_id", "timestamp"]],
            pd.DataFrame(extra, columns=["user_id", "item_id", "timestamp"]),
        ]
    )
    items = pd.DataFrame({"item_id": ds.items.ids, "title": ds.item_titles()})
    full = Dataset.from_frames(frame, items=items, name="groups+")
    full = full.with_item_embedding(
        "text", ds.item_embeddings["text"][ds.items.to_idx(np.asarray(full.items.ids))]
    )
    train = full.with_interactions(np.flatnonzero(full.timestamp < 1000))
    valid = full.with_interactions(np.flatnonzero(full.timestamp >= 1000))
    params = {"epochs": 20, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    base = {"fusion": "none", "cold_items": "text_neighbours", "cold_neighbours": 3}
    m = LMLightGCN(**params, **base).fit(train, valid, seed=0)
    w = float(m.module_.cold_scale)
    assert w in COLD_WEIGHT_GRID and w > 0
    m.save(tmp_path / "m")
    m2 = load_model(tmp_path / "m")
    assert float(m2.module_.cold_scale) == w
    np.testing.assert_allclose(m2.score(full.users.ids), m.score(full.users.ids), atol=1e-5)
    fixed = LMLightGCN(**params, **base, cold_weight=0.25).fit(train, valid, seed=0)
    rows, nbrs, wts = fixed.cold_
    v = fixed.item_vectors()
    np.testing.assert_allclose(v[rows], 0.25 * (wts[..., None] * v[nbrs]).sum(1), atol=1e-6)
