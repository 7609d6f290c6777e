"""Ensemble fusion: hand-computed RRF and z-score fusion, validation-only weights, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.evaluation.evaluator import Evaluator
from fusionrec.models.base import ModelConfig, Recommender, load_model
from fusionrec.models.composite.ensemble import Ensemble, normalise_scores, rrf_scores
from fusionrec.testing import check_recommender, toy_dataset


class _Fixed(Recommender):
    """A test scorer returning a fixed (n_users, n_items) table."""

    name = "fixed_test"
    Config = ModelConfig

    def _fit(self, dataset, valid, seed):
        self.table = np.zeros((dataset.n_users, dataset.n_items), np.float32)

    def score_indices(self, user_idx, item_idx=None):
        s = self.table[np.asarray(user_idx)]
        return s if item_idx is None else s[:, np.asarray(item_idx)]

    def _get_state(self):
        return {"table": self.table}

    def _set_state(self, state):
        self.table = state["table"]


def _data() -> tuple[Dataset, Dataset, Dataset]:
    """2 users x 5 items a..e; both saw e in training. Valid: u0-b, u1-d. Test: u0-a, u1-c
    (so that a tie in the fused scores favours the test item: lower index first)."""
    rows = [("u0", "e"), ("u1", "e"), ("u0", "b"), ("u1", "d"), ("u0", "a"), ("u1", "c")]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"])
    items = pd.DataFrame({"item_id": list("abcde")})
    ds = Dataset.from_frames(inter, items=items, name="five")
    # interactions keep row order
    return (
        ds.with_interactions(np.array([0, 1])),
        ds.with_interactions(np.array([2, 3])),
        ds.with_interactions(np.array([4, 5])),
    )


def _fixed(train: Dataset, table) -> _Fixed:
    m = _Fixed().fit(train)
    order_u = train.users.to_idx(np.array(["u0", "u1"], dtype=object))
    order_i = train.items.to_idx(np.array(list("abcde"), dtype=object))
    t = np.zeros((2, 5), np.float32)
    t[np.ix_(order_u, order_i)] = np.asarray(table, np.float32)
    m.table = t
    return m


def _cols(train: Dataset, names: str) -> np.ndarray:
    return train.items.to_idx(np.array(list(names), dtype=object))


def test_rrf_of_two_rankers_equals_hand_computed_fusion():
    train, _, _ = _data()
    # user u0: A ranks a>b>c>d, B ranks c>b>d>a (e is seen: excluded from both rankings)
    a = _fixed(train, [[4, 3, 2, 1, 9], [1, 1, 1, 1, 9]])
    b = _fixed(train, [[1, 3, 4, 2, 9], [1, 1, 1, 1, 9]])
    ens = Ensemble.from_models([a, b], method="rrf", rrf_k=60.0)
    u0 = train.users.to_idx(np.array(["u0"], dtype=object))
    got = ens.score_indices(u0, _cols(train, "abcde"))[0]
    expected = [1 / 61 + 1 / 64, 1 / 62 + 1 / 62, 1 / 63 + 1 / 61, 1 / 64 + 1 / 63, 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    top = ens.recommend(["u0"], k=4)["item_id"].tolist()
    assert top == ["c", "b", "a", "d"]


def test_rrf_weights_and_unranked_items():
    s = np.array([[3.0, 2.0, -np.inf, 1.0]])
    got = rrf_scores([s, s], np.array([2.0, 1.0]), k=1.0)
    np.testing.assert_allclose(got, [[3 / 2, 3 / 3, 0.0, 3 / 4]])


def test_weighted_zscore_fusion_on_2x4_example():
    a = np.array([[4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 10.0, 10.0]])
    b = np.array([[10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0]])
    za = np.array([[3, 1, -1, -3], [-1, -1, 1, 1]]) * np.array([[1 / np.sqrt(5)], [1.0]])
    zb = np.array([[-3, -1, 1, 3], [-3, -1, 1, 3]]) / np.sqrt(5)
    np.testing.assert_allclose(normalise_scores(a, "zscore"), za, atol=1e-12)
    np.testing.assert_allclose(normalise_scores(b, "zscore"), zb, atol=1e-12)
    # through the ensemble: item columns a..d of the 5-item data, e seen
    train, _, _ = _data()
    ma = _fixed(train, np.c_[a, [0, 0]])
    mb = _fixed(train, np.c_[b, [0, 0]])
    ens = Ensemble.from_models(
        [ma, mb], method="weighted", normalisation="zscore", weights=(0.75, 0.25)
    )
    users = train.users.to_idx(np.array(["u0", "u1"], dtype=object))
    got = ens.score_indices(users, _cols(train, "abcd"))
    np.testing.assert_allclose(got, 0.75 * za + 0.25 * zb, rtol=1e-5, atol=1e-6)


def test_minmax_and_rank_normalisation():
    s = np.array([[2.0, 4.0, -np.inf, 3.0]])
    np.testing.assert_allclose(normalise_scores(s, "minmax"), [[0.0, 1.0, -np.inf, 0.5]])
    r = normalise_scores(s, "rank")
    assert r[0, 1] > r[0, 3] > r[0, 0] and r[0, 2] == -np.inf


def test_learned_weights_use_validation_only():
    train, valid, test = _data()
    # A puts each user's VALID item first, B each user's TEST item first
    # (A barely, B strongly: only A's weight alone puts the valid item first)
    a = _fixed(train, [[4, 5, 0, 0, 0], [0, 0, 4, 5, 0]])
    b = _fixed(train, [[5, 1, 0, 0, 0], [0, 0, 5, 1, 0]])
    ens = Ensemble.from_models([a, b], method="weighted", normalisation="zscore", weight_grid=4)
    ens.fit_weights(valid, train)
    np.testing.assert_allclose(ens.weights_, [1.0, 0.0])
    assert ens.valid_metric_ == pytest.approx(1.0)
    # the fused ranking follows A: each user's valid item above their test item
    users = train.users.to_idx(np.array(["u0", "u1"], dtype=object))
    sc = ens.score_indices(users, _cols(train, "abcd"))
    assert sc[0, 1] > sc[0, 0] and sc[1, 3] > sc[1, 2]
    ev = Evaluator(metrics=("ndcg",), ks=(1,))
    assert ev.evaluate(b, valid, exclude=(train,))["ndcg@1"] == 0.0
    # and swapping what valid favours swaps the weights
    ens2 = Ensemble.from_models([a, b], method="weighted", weight_grid=4).fit_weights(test, train)
    assert ens2.weights_[1] > ens2.weights_[0]


def test_stacked_learner_prefers_the_informative_member():
    ds = toy_dataset(n_users=40, n_items=30, seed=1)
    from fusionrec.data.splits import split

    sp = split(ds, "rs", (0.7, 0.15, 0.15), seed=0)
    good = load_model_free("ease", sp.train)
    noise = _Fixed().fit(sp.train)
    noise.table = np.random.default_rng(0).normal(size=noise.table.shape).astype(np.float32)
    ens = Ensemble.from_models([good, noise], method="stacked").fit_weights(
        sp.valid, sp.train, seed=0
    )
    assert ens.weights_[0] > 3 * abs(ens.weights_[1])


def load_model_free(name: str, train: Dataset) -> Recommender:
    from fusionrec.models.registry import get_model

    return get_model(name)().fit(train)


@pytest.mark.parametrize("method", ["weighted", "rrf", "stacked"])
def test_ensemble_conformance(method):
    members = [{"name": "ease"}, {"name": "itemknn"}]
    # members are saved as nested model folders (members/<i>-<name>/), which save_load checks
    report = check_recommender(Ensemble, {"members": members, "method": method})
    assert {"batch_equals_single", "save_load"} <= set(report.passed)


def test_fit_learns_weights_and_save_load_roundtrip(tmp_path):
    ds = toy_dataset(n_users=40, n_items=30, seed=2)
    from fusionrec.data.splits import split

    sp = split(ds, "rs", (0.8, 0.1, 0.1), seed=0)
    ens = Ensemble(members=[{"name": "ease"}, {"name": "pop"}], weight_grid=5).fit(
        sp.train, sp.valid, seed=0
    )
    assert np.isclose(ens.weights_.sum(), 1.0) and ens.valid_metric_ > 0
    path = ens.save(tmp_path / "ens")
    assert sorted(p.name for p in (path / "members").iterdir()) == ["0-ease", "1-pop"]
    back = load_model(path)
    assert isinstance(back, Ensemble)
    np.testing.assert_array_equal(back.weights_, ens.weights_)
    np.testing.assert_allclose(back.score(ds.users.ids), ens.score(ds.users.ids), rtol=1e-6)


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="weights"):
        Ensemble(members=[{"name": "ease"}, {"name": "pop"}], weights=(1.0,))
    with pytest.raises(ConfigError, match="at least one member"):
        Ensemble(members=[])
    with pytest.raises(ConfigError, match="method"):
        Ensemble(method="average")


def test_forward_selection_leaves_a_noise_member_out_and_never_scores_it():
    train, valid, _ = _data()
    good = _fixed(train, [[0, 5, 0, 0, 0], [0, 0, 0, 5, 0]])  # each user's valid item first
    noise = _fixed(train, [[3, 0, 1, 2, 0], [2, 0, 3, 0, 0]])  # the valid item last
    ens = Ensemble.from_models([good, noise], weight_grid=4).fit_weights(valid, train)
    np.testing.assert_allclose(ens.weights_, [1.0, 0.0])
    assert ens.valid_metric_ == pytest.approx(1.0)
    assert ens.selection_log_ == [(0, 1.0, pytest.approx(1.0))]

    def boom(*a, **k):
        raise AssertionError("a member with weight 0 was scored")

    noise.score_indices = boom
    users = train.users.to_idx(np.array(["u0", "u1"], dtype=object))
    np.testing.assert_allclose(ens.score_indices(users), ens._combine(
        [ens._member_scores(good, users)], np.array([1.0])).astype(np.float32))


def _complementary(train: Dataset) -> tuple[_Fixed, _Fixed]:
    """A ranks u0's valid item (b) first but not u1's (d); B the other way round. Alone each
    ranks one valid item first and the other second; z-scored and mixed half and half both valid items come first (b: 0.745 vs
    a: 0.56 for u0; d: 0.745 vs c: 0.56 for u1, hand-computed over the 4 unseen items)."""
    a = _fixed(train, [[0, 5, 0, 0, 0], [0, 0, 5, 1, 0]])
    b = _fixed(train, [[5, 1, 0, 0, 0], [0, 0, 0, 5, 0]])
    return a, b


def test_forward_selection_adds_a_complementary_member():
    train, valid, _ = _data()
    a, b = _complementary(train)
    ens = Ensemble.from_models([a, b], weight_grid=4).fit_weights(valid, train)
    assert ens.valid_metric_ == pytest.approx(1.0)
    assert (ens.weights_ > 0).all() and ens.weights_.sum() == pytest.approx(1.0)
    assert [m for m, _, _ in ens.selection_log_] == [0, 1]
    # NDCG@10 of A alone: u0's item at rank 1, u1's at rank 2
    assert ens.selection_log_[0][2] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    # a gain threshold above the +100% measured keeps the first member alone
    alone = Ensemble.from_models([a, b], weight_grid=4, min_gain=1.5).fit_weights(valid, train)
    np.testing.assert_allclose(alone.weights_, [1.0, 0.0])
    # the full simplex search finds the same optimum without choosing members
    grid = Ensemble.from_models([a, b], weight_grid=4, selection="all").fit_weights(valid, train)
    assert grid.valid_metric_ == pytest.approx(1.0)
