"""lm_sasrec: conformance, cold items ranked by text for histories that read alike, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from _lm_data import make_groups

from fusionrec.models import get_model, load_model
from fusionrec.models.lm_sasrec import LMSASRec
from fusionrec.testing import check_recommender


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    from fusionrec.encoders import encode_items

    ds, cs, cr = make_groups()
    cache = tmp_path_factory.mktemp("emb")
    return ds.with_item_embedding("text", encode_items(ds, cache_dir=cache)), cs, cr


FAST = {"epochs": 2, "max_len": 4, "batch_size": 8, "device": "cpu"}


def test_conformance_on_the_shared_toy_data():
    check_recommender(LMSASRec, FAST)


@pytest.mark.parametrize("fusion", ["add", "gate"])
def test_conformance(groups, fusion):
    ds, _, _ = groups
    check_recommender(LMSASRec, {**FAST, "fusion": fusion}, ds, k=2)


@pytest.mark.parametrize("fusion", ["add", "gate"])
def test_cold_items_rank_for_textually_similar_histories(groups, fusion, tmp_path):
    ds, cold_s, cold_r = groups
    params = {"epochs": 40, "max_len": 4, "batch_size": 8, "lr": 5e-3, "dropout": 0.0}
    params |= {"attn_dropout": 0.0, "patience": 0, "device": "cpu"}
    m = get_model("lm_sasrec")(**params, fusion=fusion).fit(ds, seed=0)
    cold = list(cold_s) + list(cold_r)
    s = m.score(ds.users.ids, cold)
    space_user = np.array([int(u[1:]) < 8 for u in ds.users.ids])
    assert ((s.argmax(1) < len(cold_s)) == space_user).all()
    h = m.score_histories(
        [ds.items.to_idx(np.array(["r0", "r1"])), ds.items.to_idx(np.array(["s2"]))]
    )
    ci = ds.items.to_idx(np.array(cold))
    assert h[0, ci].argmax() >= len(cold_s) and h[1, ci].argmax() < len(cold_s)
    # plain SASRec: a cold item's ID row never got a gradient as a target; it cannot tell
    plain = get_model("sasrec")(**params).fit(ds, seed=0)
    s0 = plain.score(ds.users.ids, cold)
    assert ((s0.argmax(1) < len(cold_s)) == space_user).mean() <= 0.75
    m.save(tmp_path / "m")
    np.testing.assert_allclose(
        load_model(tmp_path / "m").score(ds.users.ids), m.score(ds.users.ids), atol=1e-4
    )
