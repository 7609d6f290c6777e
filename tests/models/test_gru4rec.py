"""GRU4Rec: padding round trip known answers, padding-invariance, a planted cycle, contrastive pretraining."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _seq_data import cycle, next_item_accuracy

from fusionrec.errors import ConfigError
from fusionrec.models import get_model
from fusionrec.models.sequential.gru4rec import GRU4Rec, left_to_right, right_to_left

FAST = dict(embedding_dim=16, state_dim=16, max_len=5, epochs=3, batch_size=8)


def test_registered():
    assert get_model("gru4rec") is GRU4Rec


def test_left_right_known_answer():
    x = torch.tensor([[0, 0, 1, 2], [3, 4, 5, 6], [0, 0, 0, 7]])
    n = (x > 0).sum(1)
    r = left_to_right(x, n)
    assert r[:, :2].tolist() == [[1, 2], [3, 4], [7, 0]]
    assert r[0, :2].tolist() == [1, 2] and r[2, 0] == 7
    assert right_to_left(r, n).tolist() == x.tolist()  # padding back as zeros


def test_padding_does_not_change_the_representation():
    """The same history left-padded to different lengths gets the same scores."""
    m = GRU4Rec(**{**FAST, "max_len": 8}).fit(cycle(), seed=0)
    m.module_.eval()
    seq = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])
    short = torch.tensor([[0, 3, 4, 5]])
    with torch.no_grad():
        a, b = m.module_.last(seq), m.module_.last(short)
    assert torch.allclose(a, b, atol=1e-6)


def test_next_item_pattern():
    ds = cycle()
    m = GRU4Rec(
        embedding_dim=32, state_dim=32, max_len=10, dropout=0.1, epochs=40, batch_size=16,
        lr=1e-2
    ).fit(ds, seed=0)  # fmt: skip
    assert next_item_accuracy(m, ds) >= 0.95
    h = ds.items.to_idx(np.array(["i3", "i4", "i5"]))
    assert ds.items.ids[m.score_histories([h]).argmax(1)[0]] == "i6"


def test_contrastive_objective_trains_the_encoder_only():
    aug = [{"kind": "crop", "rate": 0.6}, {"kind": "mask", "rate": 0.3}]
    m = GRU4Rec(**FAST, objective="contrastive", augment=aug).fit(cycle(), seed=0)
    rec = m.history_.records[-1]
    assert np.isfinite(rec["loss"]) and "cl" in str(rec)
    with pytest.raises(ConfigError, match="augment"):
        GRU4Rec(**FAST, objective="contrastive")
