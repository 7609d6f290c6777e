"""text_seq: conformance and transfer to items never seen in training."""

from __future__ import annotations

import numpy as np
from _torch_model_checks import check_model

from fusionrec.models import get_model
from fusionrec.models.text.text_seq import TextSeq


def test_conformance(groups, tmp_path):
    ds, _, _ = groups
    check_model(
        TextSeq, {"epochs": 2, "max_len": 4, "batch_size": 8, "device": "cpu"}, ds, tmp_path
    )


def test_transfers_to_unseen_items(groups):
    ds, cold_s, cold_r = groups
    m = get_model("text_seq")(
        epochs=40, max_len=4, batch_size=8, lr=5e-3, dropout=0.0, device="cpu"
    ).fit(ds, seed=0)
    cold = list(cold_s) + list(cold_r)
    s = m.score(ds.users.ids, cold)
    space_user = np.array([int(u[1:]) < 8 for u in ds.users.ids])
    assert ((s.argmax(1) < len(cold_s)) == space_user).mean() >= 0.9
    h = m.score_histories([ds.items.to_idx(np.array(["r0", "r1"])), np.zeros(0, np.int64)])
    assert h.shape == (2, ds.n_items) and np.isfinite(h).all()
    ci = ds.items.to_idx(np.array(cold))
    assert h[0, ci].argmax() >= len(cold_s)  # a romance history picks a cold romance item
