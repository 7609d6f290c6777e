"""Language-model "label embeddings" as item features: a text embedding matrix attached to the
Dataset (``item_embeddings["text"]``) is an item feature of two_tower and deepfm, and it is what
lets them rank items nobody interacted with for the users whose history reads like them."""

from __future__ import annotations

import numpy as np
import pytest
from _lm_data import make_groups

from fusionrec.models import get_model


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    from fusionrec.encoders import encode_items

    ds, cs, cr = make_groups()
    cache = tmp_path_factory.mktemp("emb")
    return ds, ds.with_item_embedding("text", encode_items(ds, cache_dir=cache)), cs, cr


# no item feature columns (titles are unique tokens: useless for unseen items), no user features:
# the text embedding is the only side information
PARAMS = {
    "two_tower": {"epochs": 60, "batch_size": 16, "lr": 0.01},
    "deepfm": {"epochs": 60, "batch_size": 64, "lr": 0.01},
}


@pytest.mark.parametrize("name", ["two_tower", "deepfm"])
def test_text_embedding_ranks_cold_items_for_the_right_users(groups, name):
    plain, with_text, cold_s, cold_r = groups
    params = {**PARAMS[name], "item_feature_columns": [], "user_features": False}
    params |= {"patience": 0, "device": "cpu"}
    cold = list(cold_s) + list(cold_r)
    space_user = np.array([int(u[1:]) < 8 for u in plain.users.ids])

    m = get_model(name)(**params).fit(with_text, seed=0)
    s = m.score(with_text.users.ids, cold)
    assert ((s.argmax(1) < len(cold_s)) == space_user).all()
    # on average a user scores the cold items of their group above those of the other group
    own = np.where(space_user[:, None], s[:, :2], s[:, 2:])
    other = np.where(space_user[:, None], s[:, 2:], s[:, :2])
    assert (own.mean(1) > other.mean(1)).all()

    # the same model without the text matrix has nothing to tell cold items apart: exact ties
    m0 = get_model(name)(**params).fit(plain, seed=0)
    s0 = m0.score(plain.users.ids, cold)
    np.testing.assert_allclose(s0, np.repeat(s0[:, :1], len(cold), axis=1), rtol=1e-5, atol=1e-5)
