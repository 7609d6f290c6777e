"""lm_ease: conformance, the closed form against an independent solve, cold items via text."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.models import get_model, load_model
from fusionrec.models.text.lm_ease import LMEASE
from fusionrec.models.text.toolkit import text_features
from fusionrec.testing import check_recommender


def test_conformance(groups):
    ds, _, _ = groups
    report = check_recommender(LMEASE, {"reg_weight": 5.0}, ds, k=2)
    assert "score_histories" in report.passed


def test_registered():
    assert get_model("lm_ease") is LMEASE


def test_warm_columns_match_an_independent_ridge_solve(groups):
    """Each warm column j of B is the ridge regression of column j of [X; sqrt(a)F] on the other
    columns (EASE's zero-diagonal constraint), solved here directly with lstsq."""
    ds, _, _ = groups
    lam, tw = 3.0, 0.7
    m = LMEASE(reg_weight=lam, text_weight=tw).fit(ds)
    x = ds.matrix("csr").toarray().astype(np.float64)
    f, _ = text_features(ds.item_embeddings["text"])
    alpha = tw * x.sum(0).mean()
    y = np.vstack([x, np.sqrt(alpha) * f.T])
    warm = np.flatnonzero(x.sum(0) > 0)
    n = ds.n_items
    for j in warm[:5]:
        others = np.delete(np.arange(n), j)
        a = np.vstack([y[:, others], np.sqrt(lam) * np.eye(n - 1)])
        t = np.concatenate([y[:, j], np.zeros(n - 1)])
        b = np.linalg.lstsq(a, t, rcond=None)[0]
        np.testing.assert_allclose(m.B_[others, j], b, atol=2e-4)
        assert m.B_[j, j] == 0


def test_text_weight_zero_is_ease_on_warm_items(groups):
    ds, cold_s, cold_r = groups
    lm = LMEASE(reg_weight=4.0, text_weight=0.0).fit(ds)
    ease = get_model("ease")(reg_weight=4.0).fit(ds)
    warm = ds.item_popularity() > 0
    np.testing.assert_allclose(lm.B_[:, warm], ease.B_[:, warm], atol=1e-5)
    # the text part changes the warm weights when switched on
    with_text = LMEASE(reg_weight=4.0, text_weight=1.0).fit(ds)
    assert np.abs(with_text.B_[:, warm] - ease.B_[:, warm]).max() > 1e-3


@pytest.mark.parametrize("neighbors", [1, 3])
def test_cold_items_rank_for_textually_similar_users(groups, neighbors):
    """Items with no interactions are ranked by users whose history reads like them: every
    space user scores each cold space item above every romance item (warm or cold), and the
    reverse for romance users. Plain EASE scores all cold items 0 (it cannot tell)."""
    ds, cold_s, cold_r = groups
    m = get_model("lm_ease")(reg_weight=2.0, cold_neighbours=neighbors).fit(ds)
    s = m.score(ds.users.ids)
    is_space = np.array([i.startswith("s") for i in ds.items.ids])
    cs = ds.items.to_idx(np.array(cold_s))
    cr = ds.items.to_idx(np.array(cold_r))
    for u, uid in enumerate(ds.users.ids):
        if int(uid[1:]) < 8:
            assert s[u, cs].min() > s[u, ~is_space].max(), uid
        else:
            assert s[u, cr].min() > s[u, is_space].max(), uid
    # cold items reach the top of the recommendations
    rec = m.recommend(ds.users.ids, k=4)
    cold = set(cold_s) | set(cold_r)
    assert rec.groupby("user_id")["item_id"].apply(lambda x: bool(set(x) & cold)).all()
    ease = get_model("ease")(reg_weight=2.0).fit(ds)
    assert np.all(ease.score(ds.users.ids, list(cold_s) + list(cold_r)) == 0)


def test_ad_hoc_history_reaches_cold_items(groups, tmp_path):
    ds, cold_s, cold_r = groups
    m = LMEASE(reg_weight=2.0).fit(ds)
    h = m.score_histories([ds.items.to_idx(np.array(["r0", "r1"]))])[0]
    ci = ds.items.to_idx(np.array(list(cold_s) + list(cold_r)))
    assert h[ci].argmax() >= len(cold_s)  # a romance history picks a cold romance item
    m.save(tmp_path / "m")
    np.testing.assert_array_equal(
        load_model(tmp_path / "m").score_histories([[0, 1]]), m.score_histories([[0, 1]])
    )


def test_items_without_text_are_left_out_of_the_text_part(groups):
    ds, cold_s, _ = groups
    emb = np.array(ds.item_embeddings["text"], dtype=np.float32)
    gone = ds.items.to_idx(np.array([cold_s[0]]))[0]
    emb[gone] = np.nan
    m = LMEASE(reg_weight=2.0).fit(ds.with_item_embedding("text", emb))
    assert np.isfinite(m.B_).all()
    assert np.all(m.B_[:, gone] == 0)  # cold and no text: nothing to score it by
    other = ds.items.to_idx(np.array([cold_s[1]]))[0]
    assert np.abs(m.B_[:, other]).max() > 0


def test_text_features_centre_and_normalise():
    f, has = text_features(np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, 1.0], [0.0, 0.0]]))
    assert has.tolist() == [True, True, False, False]
    np.testing.assert_allclose(
        f[:2], [[np.sqrt(0.5), -np.sqrt(0.5)], [-np.sqrt(0.5), np.sqrt(0.5)]]
    )
    assert np.all(f[2:] == 0)
    with pytest.raises(ConfigError, match="2-d"):
        text_features(np.zeros(3))


def test_refuses_too_many_items(groups):
    ds, _, _ = groups
    with pytest.raises(ConfigError, match="max_items"):
        LMEASE(max_items=4).fit(ds)


def _valid_on(ds, pairs):
    """A validation Dataset over ds's id maps holding the given (user_id, item_id) pairs."""
    from dataclasses import replace

    u = ds.users.to_idx(np.array([p[0] for p in pairs], dtype=object))
    i = ds.items.to_idx(np.array([p[1] for p in pairs], dtype=object))
    return replace(ds, user_idx=u, item_idx=i, rating=None, timestamp=None, name="valid", _cache={})


def test_cold_weight_is_chosen_on_validation(groups):
    """Validation interactions on the cold items keep their text-borrowed scores (weight >= 1);
    validation interactions only on warm items the users have not seen switch them off (0)."""
    ds, cold_s, cold_r = groups
    seen = ds.matrix("csr")
    new_items = [(u, c) for u in ds.users.ids for c in (cold_s if int(u[1:]) < 8 else cold_r)]
    m = LMEASE(reg_weight=2.0).fit(ds, _valid_on(ds, new_items))
    assert m.cold_weight_ >= 1.0
    unseen_warm = []
    for u, uid in enumerate(ds.users.ids):
        grp = "s" if int(uid[1:]) < 8 else "r"
        for i, iid in enumerate(ds.items.ids):
            if iid.startswith(grp) and iid not in cold_s + cold_r and not seen[u, i]:
                unseen_warm.append((uid, iid))
    m0 = LMEASE(reg_weight=2.0).fit(ds, _valid_on(ds, unseen_warm))
    assert m0.cold_weight_ == 0.0
    cs = ds.items.to_idx(np.array(cold_s))
    assert np.all(m0.B_[:, cs] == 0)
    fixed = LMEASE(reg_weight=2.0, cold_weight=0.5).fit(ds, _valid_on(ds, new_items))
    assert fixed.cold_weight_ == 0.5
    np.testing.assert_allclose(fixed.B_[:, cs], 0.5 * m.B_[:, cs] / m.cold_weight_, rtol=1e-5)
