"""SASRec: windows/padding known answers, conformance, a planted next-item pattern, ml-100k band."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from _torch_model_checks import check_model, one_torch_thread  # noqa: F401

from fusionrec.data import Dataset, split
from fusionrec.models import get_model
from fusionrec.models.sasrec import SASRec, pad_histories, training_windows

FAST = dict(
    hidden_size=16,
    n_heads=2,
    n_layers=1,
    inner_size=32,
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


def test_next_item_pattern():
    """Item i is always followed by i+1 (mod n): the next item must be ranked first."""
    ds = _cycle()
    m = SASRec(
        hidden_size=32,
        n_heads=2,
        n_layers=1,
        inner_size=64,
        max_len=10,
        dropout=0.1,
        attn_dropout=0.1,
        epochs=40,
        batch_size=16,
        lr=1e-2,
        device="cpu",
    ).fit(ds, seed=0)
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
