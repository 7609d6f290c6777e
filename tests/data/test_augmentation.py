"""Sequence and interaction augmentation: hand-checkable outputs of each op on small arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fusionrec.data import Dataset
from fusionrec.data.augmentation import (
    AugmentConfig,
    SequenceAugmenter,
    augment_interactions,
    cooccurrence_substitutes,
    crop,
    mask,
    pack_sequences,
    reorder,
    substitute,
    unpack_sequences,
)
from fusionrec.errors import ConfigError

# rows: 5 items, 3 items, 1 item, empty (codes = item index + 1, left-padded)
SEQS = np.array(
    [
        [0, 11, 12, 13, 14, 15],
        [0, 0, 0, 21, 22, 23],
        [0, 0, 0, 0, 0, 31],
        [0, 0, 0, 0, 0, 0],
    ]
)


def _items(row: np.ndarray) -> list[int]:
    return row[row > 0].tolist()


def _is_left_padded(a: np.ndarray) -> bool:
    valid = a > 0
    n = valid.sum(1)
    return bool(np.array_equal(valid, np.arange(a.shape[1])[None] >= (a.shape[1] - n)[:, None]))


@pytest.mark.parametrize("seed", range(5))
def test_crop_keeps_a_contiguous_run_of_floor_rate_n(seed):
    before = SEQS.copy()
    out = crop(SEQS, 0.6, np.random.default_rng(seed))
    assert np.array_equal(SEQS, before)  # input untouched
    assert out.shape == SEQS.shape and _is_left_padded(out)
    # lengths: floor(0.6 * 5) = 3, floor(0.6 * 3) = 1, max(1, floor(0.6)) = 1, empty stays empty
    assert [len(_items(r)) for r in out] == [3, 1, 1, 0]
    for r in range(3):
        src, kept = _items(SEQS[r]), _items(out[r])
        starts = [i for i in range(len(src)) if src[i : i + len(kept)] == kept]
        assert starts, f"row {r}: {kept} is not a contiguous run of {src}"
    assert _items(out[2]) == [31]


def test_crop_start_is_drawn_from_the_rng():
    runs = {tuple(_items(crop(SEQS[:1], 0.4, np.random.default_rng(s))[0])) for s in range(40)}
    # floor(0.4 * 5) = 2 items: the 4 possible runs all show up, nothing else
    assert runs == {(11, 12), (12, 13), (13, 14), (14, 15)}
    a = crop(SEQS, 0.5, np.random.default_rng(7))
    assert np.array_equal(a, crop(SEQS, 0.5, np.random.default_rng(7)))


@pytest.mark.parametrize("seed", range(5))
def test_mask_replaces_floor_rate_n_items_by_the_mask_code(seed):
    out = mask(SEQS, 0.5, np.random.default_rng(seed), mask_code=99)
    assert np.array_equal(out > 0, SEQS > 0)  # padding stays padding, positions kept
    # floor(0.5 * 5) = 2, floor(0.5 * 3) = 1, floor(0.5 * 1) = 0
    assert (out == 99).sum(1).tolist() == [2, 1, 0, 0]
    keep = out != 99
    assert np.array_equal(out[keep], SEQS[keep])
    full = mask(SEQS, 1.0, np.random.default_rng(seed), mask_code=99)
    assert (full == 99).sum() == (SEQS > 0).sum()
    with pytest.raises(ConfigError, match="mask_code"):
        mask(SEQS, 0.5, np.random.default_rng(0), mask_code=0)


@pytest.mark.parametrize("seed", range(8))
def test_reorder_is_a_permutation_within_one_window(seed):
    out = reorder(SEQS, 0.6, np.random.default_rng(seed))
    assert np.array_equal(out > 0, SEQS > 0)
    for r in range(len(SEQS)):
        a, b = _items(SEQS[r]), _items(out[r])
        assert sorted(a) == sorted(b)
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if diff:  # changed positions lie inside one window of floor(0.6 * n) items
            assert diff[-1] - diff[0] + 1 <= int(0.6 * len(a) + 1e-9)
    assert _items(out[1]) == [21, 22, 23]  # floor(0.6 * 3) = 1: nothing to shuffle
    shuffled = reorder(SEQS[:1], 1.0, np.random.default_rng(seed))[0]
    assert sorted(_items(shuffled)) == [11, 12, 13, 14, 15]
    moved = sum(
        reorder(SEQS[:1], 1.0, np.random.default_rng(s))[0].tolist() != SEQS[0].tolist()
        for s in range(20)
    )
    assert moved >= 15  # a full-window shuffle almost never returns the identity (1/120)


def test_cooccurrence_substitutes_pick_the_most_co_occurring_item():
    # users x items; item 0 shares 2 users with item 1, 1 user with item 2;
    # item 3 shares one user with 1 and one with 2 (tie -> lower index 1); item 4 is alone
    x = sp.csr_matrix(
        np.array(
            [
                [1, 1, 0, 0, 0],
                [1, 1, 1, 0, 0],
                [0, 1, 0, 1, 0],
                [0, 0, 1, 1, 0],
                [0, 0, 0, 0, 1],
            ],
            dtype=np.float32,
        )
    )
    subs = cooccurrence_substitutes(x)
    assert subs.tolist() == [1, 0, 0, 1, 4]  # 2: ties 0/1/3 with 1 each -> 0; 4 -> itself
    seqs = np.array([[0, 1, 2, 4, 5]])  # codes of items 0, 1, 3, 4
    out = substitute(seqs, 1.0, np.random.default_rng(0), subs)
    assert out.tolist() == [[0, 2, 1, 2, 5]]
    # rate 0.5 of 4 items: 2 positions substituted (item 4 maps to itself: no visible change)
    n_changed = []
    for seed in range(20):
        half = substitute(seqs, 0.5, np.random.default_rng(seed), subs)[0]
        changed = np.flatnonzero(half != seqs[0])
        assert all(half[c] == subs[seqs[0, c] - 1] + 1 for c in changed)
        n_changed.append(len(changed))
    assert max(n_changed) == 2 and min(n_changed) == 1


def test_ops_refuse_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="left-padded"):
        crop(np.array([[1, 0, 2]]), 0.5, rng)
    with pytest.raises(ConfigError, match="2-d integer"):
        crop(np.array([1.0, 2.0]), 0.5, rng)
    with pytest.raises(ConfigError, match=r"rate must be in \(0, 1\]"):
        reorder(SEQS, 0.0, rng)
    with pytest.raises(ConfigError, match="outside"):
        substitute(np.array([[0, 9]]), 0.5, rng, np.arange(3))
    with pytest.raises(ConfigError, match="at least one op"):
        SequenceAugmenter(AugmentConfig())
    with pytest.raises(ConfigError, match="substitutes"):
        SequenceAugmenter({"ops": [{"kind": "substitute", "rate": 0.2}]})
    with pytest.raises(ConfigError, match="mask_code"):
        SequenceAugmenter({"ops": [{"kind": "mask", "rate": 0.2}]})
    with pytest.raises(Exception, match="extra|rate"):
        AugmentConfig(ops=[{"kind": "crop", "rate": 0.5, "nope": 1}])


def test_augmenter_one_op_per_row_is_deterministic_and_covers_all_ops():
    aug = SequenceAugmenter(
        {"ops": [{"kind": "crop", "rate": 0.4}, {"kind": "mask", "rate": 0.4}]}, mask_code=99
    )
    big = np.tile(SEQS[:1], (200, 1))
    out = aug(big, np.random.default_rng(1))
    assert np.array_equal(out, aug(big, np.random.default_rng(1)))
    cropped = (out > 0).sum(1) == 2  # crop keeps floor(0.4 * 5) = 2 items
    masked = (out == 99).sum(1) == 2  # mask hides 2 of 5
    assert np.all(cropped ^ masked)  # each row got exactly one op
    assert 60 < cropped.sum() < 140  # drawn uniformly
    both = SequenceAugmenter(
        {"ops": [{"kind": "crop", "rate": 0.6}, {"kind": "mask", "rate": 0.4}], "compose": "all"},
        mask_code=99,
    )(SEQS[:1], np.random.default_rng(0))
    # crop to 3 items, then floor(0.4 * 3) = 1 masked
    assert (both > 0).sum() == 3 and (both == 99).sum() == 1


def test_pack_unpack_roundtrip_drops_mask_codes():
    seqs = [np.array([3, 1, 2]), np.array([], np.int64), np.array([0])]
    packed = pack_sequences(seqs)
    assert packed.tolist() == [[4, 2, 3], [0, 0, 0], [0, 0, 1]]
    back = unpack_sequences(packed)
    assert [b.tolist() for b in back] == [[3, 1, 2], [], [0]]
    assert unpack_sequences(np.array([[4, 99, 3]]), drop=(99,))[0].tolist() == [3, 2]


def _inter() -> Dataset:
    # u0: a b c d, u1: a b, u2: c d, u3: e (alone). a-b co-occur twice, c-d twice
    rows = [
        ("u0", "a"),
        ("u0", "b"),
        ("u0", "c"),
        ("u0", "d"),
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "c"),
        ("u2", "d"),
        ("u3", "e"),
        ("u4", "a"),
    ]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"])
    df["timestamp"] = np.arange(len(df), dtype=float)
    df["rating"] = np.arange(len(df), dtype=float) + 1
    return Dataset.from_frames(df, name="inter")


def test_interaction_substitution_uses_the_most_co_occurring_item_and_copies():
    ds = _inter()
    before = (ds.user_idx.copy(), ds.item_idx.copy())
    out = augment_interactions(ds, {"edge_substitute": 1.0}, np.random.default_rng(0))
    assert np.array_equal(ds.user_idx, before[0]) and np.array_equal(ds.item_idx, before[1])
    assert out is not ds and out.n_interactions == ds.n_interactions
    got = set(zip(out.users.to_ids(out.user_idx), out.items.to_ids(out.item_idx), strict=True))
    # u0 already has every substitute, u1/u2 too (a<->b, c<->d); e co-occurs with nothing;
    # u4's a -> b (the most co-occurring item with a)
    assert ("u4", "b") in got and ("u4", "a") not in got
    assert {("u0", "a"), ("u1", "a"), ("u2", "c"), ("u3", "e")} <= got
    # ratings and timestamps travel with their rows
    assert np.array_equal(out.timestamp, ds.timestamp) and np.array_equal(out.rating, ds.rating)


def test_edge_dropout_drops_a_share_but_keeps_min_per_user():
    ds = _inter()
    out = augment_interactions(ds, {"edge_dropout": 0.9}, np.random.default_rng(1))
    assert out.n_interactions < ds.n_interactions
    assert (out.user_activity() >= 1).all()  # every user keeps one interaction
    kept = set(zip(out.user_idx.tolist(), out.item_idx.tolist(), strict=True))
    assert kept <= set(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), strict=True))
    big = Dataset.from_frames(
        pd.DataFrame({"user_id": np.repeat(["x"], 2000), "item_id": np.arange(2000).astype(str)})
    )
    share = augment_interactions(
        big, {"edge_dropout": 0.3, "min_per_user": 0}, np.random.default_rng(0)
    )
    assert 0.65 < share.n_interactions / 2000 < 0.75
    with pytest.raises(ConfigError, match="edge_dropout"):
        augment_interactions(ds, {}, np.random.default_rng(0))


def test_example_config_validates():
    from pathlib import Path

    from fusionrec.experiment.config import load_config
    from fusionrec.models import get_model

    path = Path(__file__).parents[2] / "configs" / "sasrec_cl.yaml"
    cfg = load_config(path, ["train.progressive_unfreeze={3: [encoder]}"])
    model = get_model(cfg.model.name)(**cfg.model_params())
    assert model.config.cl_weight == 0.1 and [op.kind for op in model.config.augment] == [
        "crop",
        "mask",
        "reorder",
    ]
    assert model.config.progressive_unfreeze == {3: ("encoder",)}


def test_substitute_mode_add_keeps_every_original_and_adds_each_substitute_once():
    ds = _inter()
    out = augment_interactions(
        ds, {"edge_substitute": 1.0, "substitute_mode": "add"}, np.random.default_rng(0)
    )
    orig = list(zip(ds.users.to_ids(ds.user_idx), ds.items.to_ids(ds.item_idx), strict=True))
    got = list(zip(out.users.to_ids(out.user_idx), out.items.to_ids(out.item_idx), strict=True))
    assert got[: len(orig)] == orig  # nothing the user gave is lost
    assert got[len(orig) :] == [("u4", "b")]  # the only substitute a user lacks (a -> b)
    assert out.rating[-1] == ds.rating[-1] and out.timestamp[-1] == ds.timestamp[-1]
    assert len(set(got)) == len(got)


def _tiny_config(augment):
    from fusionrec.experiment.config import ExperimentConfig

    return ExperimentConfig.model_validate(
        {"data": {"name": "x", "augment": augment}, "model": {"name": "pop"}}
    )


def test_data_augment_config_refuses_sequence_ops_and_empty_settings():
    with pytest.raises(Exception, match="sequence ops"):
        _tiny_config({"ops": [{"kind": "crop", "rate": 0.5}], "edge_dropout": 0.1})
    with pytest.raises(Exception, match="edge_dropout"):
        _tiny_config({})
    assert _tiny_config({"edge_substitute": 0.5}).data.augment.edge_substitute == 0.5


def test_fit_and_evaluate_trains_on_augmented_data_but_masks_the_real_train():
    from fusionrec.data.splits import split
    from fusionrec.data.synthetic import make_synthetic
    from fusionrec.experiment import fit_and_evaluate
    from fusionrec.experiment.config import EvalConfig

    ds = make_synthetic(n_users=60, n_items=40, n_interactions_per_user=8, seed=3)
    sp_ = split(ds, "rs", (0.8, 0.1, 0.1), seed=1)
    aug = _tiny_config({"edge_substitute": 0.5, "substitute_mode": "add"}).data.augment
    ev = EvalConfig(metrics=["ndcg"], ks=[5])
    _, plain, r0 = fit_and_evaluate("pop", {}, sp_, ev, seed=7)
    _, pop, r1 = fit_and_evaluate("pop", {}, sp_, ev, seed=7, augment=aug)
    expect = augment_interactions(sp_.train, aug, np.random.default_rng(7))
    assert expect.n_interactions > sp_.train.n_interactions
    # the model saw the augmented training data (same rng seed -> same augmentation) ...
    assert np.array_equal(pop.counts_, expect.item_popularity().astype(np.float32))
    assert np.array_equal(plain.counts_, sp_.train.item_popularity().astype(np.float32))
    # ... and the split given to the evaluator was left as it was
    assert sp_.train.n_interactions < expect.n_interactions
    assert r0.n_users == r1.n_users
