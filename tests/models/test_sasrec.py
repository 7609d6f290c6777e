"""SASRec: windows/padding known answers, conformance, a planted next-item pattern, ml-100k band."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from _torch_model_checks import check_model, one_torch_thread  # noqa: F401

from fusionrec.data import Dataset, split
from fusionrec.models import get_model
from fusionrec.models.sequential.sasrec import SASRec, pad_histories, training_windows

FAST = dict(
    embedding_dim=16,
    n_heads=2,
    n_layers=1,
    ffn_dim=32,
    max_len=5,
    epochs=3,
    batch_size=8,
    device="cpu",
)


def test_training_windows_known_answer():
    inp, tgt = training_windows(
        [np.array([10, 11, 12, 13, 14, 15, 16]), np.array([5]), np.array([7, 8])], 3
    )
    # seq 0 (6 targets): windows with targets at positions 4..6 and 1..3; seq 1: none; seq 2: one
    assert inp.tolist() == [[14, 15, 16], [11, 12, 13], [0, 0, 8]]
    assert tgt.tolist() == [[15, 16, 17], [12, 13, 14], [0, 0, 9]]
    inp, tgt = training_windows(
        [np.array([1, 2, 3, 4])], 2
    )  # 3 targets -> 2 windows, older one padded
    assert inp.tolist() == [[3, 4], [0, 2]] and tgt.tolist() == [[4, 5], [0, 3]]  # codes = item + 1


def test_pad_histories():
    assert pad_histories([np.array([0, 1, 2, 3]), np.array([], int)], 3, 5).tolist() == [
        [2, 3, 4],
        [0, 0, 0],
    ]
    with pytest.raises(ValueError, match="outside"):
        pad_histories([np.array([7])], 3, 5)


def test_registered_and_needs_timestamps(tiny):
    assert get_model("sasrec") is SASRec
    no_ts = Dataset.from_frames(pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}))
    with pytest.raises(Exception, match="timestamps"):
        SASRec(**FAST).fit(no_ts)


def test_conformance(tiny, tmp_path, guard_mutation):
    guard_mutation(tiny)
    check_model(SASRec, FAST, tiny, tmp_path)


@pytest.mark.parametrize("loss", ["bpr", "bce"])
def test_pairwise_losses_train(tiny, loss):
    m = SASRec(**{**FAST, "loss": loss}).fit(tiny, seed=1)
    assert np.isfinite(m.history_.records[-1]["loss"])


def _cycle(n_items=12, n_users=40, length=9, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        s = int(rng.integers(n_items))
        for t in range(length):
            rows.append((f"u{u}", f"i{(s + t) % n_items}", float(t)))
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


# settings that learn the synthetic cycle '(i -> i+1 mod n)' in a few seconds
CYCLE_SETTINGS = dict(
    embedding_dim=32,
    n_heads=2,
    n_layers=1,
    ffn_dim=64,
    max_len=10,
    dropout=0.1,
    attn_dropout=0.1,
    epochs=40,
    batch_size=16,
    lr=1e-2,
    device="cpu",
)


def test_next_item_pattern():
    """Item i is always followed by i+1 (mod n): the next item must be ranked first."""
    ds = _cycle()
    m = SASRec(**CYCLE_SETTINGS).fit(ds, seed=0)
    last = np.array([s[-1] for s in ds.sequences()])
    top = m.score_indices(np.arange(ds.n_users)).argmax(1)
    names = ds.items.ids
    want = [f"i{(int(names[i][1:]) + 1) % 12}" for i in last]
    assert np.mean(names[top] == np.array(want)) >= 0.95
    # ad-hoc history of an unseen user: i3, i4, i5 -> i6
    h = ds.items.to_idx(np.array(["i3", "i4", "i5"]))
    assert names[m.score_histories([h]).argmax(1)[0]] == "i6"


def test_history_includes_valid():
    ds = _cycle(n_users=10)
    sp_ = split(ds, "loo")
    m = SASRec(**{**FAST, "epochs": 1}).fit(sp_.train, sp_.valid)
    v = sp_.valid
    assert (m.hist_[v.user_idx, -1] == v.item_idx + 1).all()
    m2 = SASRec(**{**FAST, "epochs": 1, "history_includes_valid": False}).fit(sp_.train, sp_.valid)
    tr_last = np.array([s[-1] for s in sp_.train.sequences()])
    assert (m2.hist_[:, -1] == tr_last + 1).all()


@pytest.mark.slow
def test_ml100k_loo_band(ml100k):
    from fusionrec.evaluation import Evaluator

    sp_ = split(ml100k, "loo")
    t0 = time.perf_counter()
    m = SASRec(device="cpu", epochs=30, patience=3).fit(sp_.train, sp_.valid, seed=0)
    fit_s = time.perf_counter() - t0
    r = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate_split(m, sp_)
    print(f"sasrec ml-100k loo: {r.metrics} fit {fit_s:.0f}s")
    assert 0.06 <= r["ndcg@10"] <= 0.2


# ------------------------------------------------------------- augmentation + contrastive loss
CL = dict(
    augment=[
        {"kind": "crop", "rate": 0.6},
        {"kind": "mask", "rate": 0.3},
        {"kind": "reorder", "rate": 0.6},
        {"kind": "substitute", "rate": 0.3},
    ],
    cl_weight=0.1,
)


def test_info_nce_known_answer_and_identical_views_beat_shuffled():
    import torch

    from fusionrec.models.sequential.sasrec import info_nce

    e = torch.eye(2)
    # 4 views e1, e2, e1, e2: each has its pair at similarity 1 and two others at 0
    assert float(info_nce(e, e)) == pytest.approx(np.log(1 + 2 / np.e), rel=1e-6)
    assert float(info_nce(e, e, temperature=0.5)) == pytest.approx(
        np.log(1 + 2 / np.e**2), rel=1e-6
    )
    g = torch.Generator().manual_seed(0)
    a = torch.randn(16, 8, generator=g)
    same = float(info_nce(a, a, 0.5, "cos"))
    shuffled = float(info_nce(a, a[torch.randperm(16, generator=g)], 0.5, "cos"))
    assert same < shuffled - 1.0


def test_cl_is_off_by_default_and_config_errors():
    m = SASRec(**FAST).fit(_cycle(n_users=6), seed=0)
    assert m.module_.mask_emb is None
    assert set(m.history_.records[-1]) >= {"loss"} and "loss_cl" not in m.history_.records[-1]
    from fusionrec.errors import ConfigError

    with pytest.raises(ConfigError, match="augment' is set but unused"):
        SASRec(augment=[{"kind": "crop", "rate": 0.5}])
    with pytest.raises(ConfigError, match="need augmentation ops"):
        SASRec(cl_weight=0.1)
    with pytest.raises(ConfigError, match="kind"):
        SASRec(augment=[{"kind": "shuffle", "rate": 0.5}], cl_weight=0.1)


def test_cl_loss_is_logged_as_its_own_term(tiny):
    m = SASRec(**FAST, **CL).fit(_cycle(n_users=10), seed=0)
    rec = m.history_.records[-1]
    assert rec["loss"] == pytest.approx(rec["loss_rec"] + rec["loss_cl"], rel=1e-6)
    assert rec["loss_cl"] > 0
    assert m.module_.mask_emb is not None  # the mask op has its own token vector
    # views come from the numpy rng: the same seed gives the same model
    again = SASRec(**FAST, **CL).fit(_cycle(n_users=10), seed=0)
    np.testing.assert_allclose(again.score_indices(np.arange(10)), m.score_indices(np.arange(10)))


def test_conformance_with_cl(tiny, tmp_path):
    check_model(SASRec, {**FAST, **CL, "augment_copies": 1}, tiny, tmp_path)


def test_augment_copies_add_training_windows():
    ds = _cycle(n_users=10)
    plain = SASRec(**FAST)
    plain.users_, plain.items_ = ds.users, ds.items
    plain._prepare(ds, np.random.default_rng(0))
    aug = SASRec(**{**FAST, "augment": [{"kind": "crop", "rate": 0.5}], "augment_copies": 2})
    aug.users_, aug.items_ = ds.users, ds.items
    aug._prepare(ds, np.random.default_rng(0))
    # each 9-item sequence gives 2 windows of 5; a crop to floor(0.5 * 9) = 4 items gives 1
    assert len(plain.inputs_) == 20 and len(aug.inputs_) == 20 + 2 * 10
    assert np.array_equal(aug.hist_, plain.hist_)  # stored histories are the real ones


def test_item_embeddings_is_the_one_lookup():
    import torch

    from fusionrec.models.sequential.sasrec import SASRecModule

    class Doubled(SASRecModule):
        def item_embeddings(self, codes):
            return 2.0 * self.item_emb(codes)

    c = SASRec.Config(**FAST)
    m = Doubled(4, c)
    torch.testing.assert_close(m.item_weights(), 2.0 * m.item_emb.weight[1:])
    seq = torch.tensor([[0, 1, 2, 3, 4]])
    m.eval()
    base = SASRecModule(4, c).eval()
    base.load_state_dict(m.state_dict())
    with torch.no_grad():
        base.item_emb.weight.mul_(2.0)  # the same doubled inputs through the plain module
    torch.testing.assert_close(m.encode(seq), base.encode(seq))


def test_next_item_pattern_with_augmentation_and_cl():
    """SASRec + augmentation + CL still learns 'item i is followed by i+1'."""
    ds = _cycle()
    m = SASRec(
        **CYCLE_SETTINGS,
        augment=[{"kind": "crop", "rate": 0.6}, {"kind": "mask", "rate": 0.3}],
        cl_weight=0.1,
        cl_temperature=0.5,
    ).fit(ds, seed=0)
    assert m.history_.records[-1]["loss_cl"] > 0
    last = np.array([s[-1] for s in ds.sequences()])
    top = m.score_indices(np.arange(ds.n_users)).argmax(1)
    names = ds.items.ids
    want = [f"i{(int(names[i][1:]) + 1) % 12}" for i in last]
    assert np.mean(names[top] == np.array(want)) >= 0.95


@pytest.mark.slow
def test_ml100k_loo_band_with_augmentation_and_cl(ml100k):
    from fusionrec.evaluation import Evaluator

    sp_ = split(ml100k, "loo")
    t0 = time.perf_counter()
    m = SASRec(
        device="cpu",
        epochs=10,
        lr=2e-3,
        patience=3,
        augment=[
            {"kind": "crop", "rate": 0.6},
            {"kind": "mask", "rate": 0.3},
            {"kind": "reorder", "rate": 0.6},
        ],
        cl_weight=0.1,
        cl_similarity="cos",
        cl_temperature=0.2,
    ).fit(sp_.train, sp_.valid, seed=0)
    fit_s = time.perf_counter() - t0
    r = Evaluator(metrics=("ndcg", "recall"), ks=(10,)).evaluate_split(m, sp_)
    rec = m.history_.records[-1]
    print(f"sasrec+cl ml-100k loo: {r.metrics} fit {fit_s:.0f}s, {len(m.history_.records)} epochs")
    assert rec["loss_cl"] > 0
    # Pop scores 0.045 on this split; plain SASRec 0.066 after 6 epochs (measured)
    assert 0.05 <= r["ndcg@10"] <= 0.2
