"""The Evaluator computes registry metrics end to end on a hand-made split with fixed scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset
from fusionrec.errors import ConfigError
from fusionrec.evaluation import EvalContext, Evaluator, validate_metric_names


class FixedScores:
    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)

    def score_indices(self, user_idx, item_idx=None):
        s = self.scores[np.asarray(user_idx)]
        return s if item_idx is None else s[:, item_idx]


def _data() -> tuple[Dataset, Dataset]:
    """4 users x 4 items. train: u0 {i0}, u1 {i0, i1}, u2 {i0}, u3 {i3}; test: u0 {i1}, u1 {i2}."""
    # listed so that first appearance gives index order u0..u3, i0..i3
    rows = [("u0", "i0"), ("u0", "i1"), ("u1", "i2"), ("u1", "i0"), ("u1", "i1"), ("u2", "i0"), ("u3", "i3")]
    users = pd.DataFrame({"user_id": ["u0", "u1", "u2", "u3"], "gender": ["F", "M", "F", "M"], "age": [20, 30, 40, 60]})
    items = pd.DataFrame({"item_id": ["i0", "i1", "i2", "i3"], "genres": [["A"], ["A", "B"], ["B"], ["C"]]})
    ds = Dataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id"]), users, items,
        item_feature_types={"genres": "token_seq"}, name="toy",
    )  # fmt: skip
    return ds.with_interactions(np.array([0, 3, 4, 5, 6])), ds.with_interactions(np.array([1, 2]))


# u0 ranks i1 > i2 > i3 (i0 masked); u1 ranks i3 > i2 (i0, i1 masked)
SCORES = np.array([[9, 3, 2, 1], [9, 9, 2, 3], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)


def test_registry_validates_and_resolves_aliases() -> None:
    assert validate_metric_names(["NDCG", "coverage", "gini", "log_loss", "ndcg"]) == ["ndcg", "itemcoverage", "giniindex", "logloss"]
    with pytest.raises(ConfigError, match="nope"):
        validate_metric_names(["ndcg", "nope"])
    with pytest.raises(ConfigError, match="unknown"):
        Evaluator(metrics=["serendipityy"])


def test_experiment_config_takes_registry_names_and_rerank_specs() -> None:
    from fusionrec.experiment.config import config_from_dict

    cfg = config_from_dict({"model": {"name": "pop"}, "eval": {"metrics": ["ndcg", "gini", "auc"], "rerank": "MMR:0.3"}})
    assert cfg.eval.metrics == ["ndcg", "giniindex", "auc"]
    assert cfg.eval.rerank == "mmr:0.3"
    with pytest.raises(ConfigError, match="giniindexx"):
        config_from_dict({"model": {"name": "pop"}, "eval": {"metrics": ["giniindexx"]}})
    with pytest.raises(ConfigError, match="re-ranker"):
        config_from_dict({"model": {"name": "pop"}, "eval": {"rerank": "shuffle:0.3"}})


def test_list_and_fair_metrics_end_to_end() -> None:
    train, test = _data()
    names = ["ndcg", "itemcoverage", "averagepopularity", "novelty", "exposure", "ndcg_gap", "calibration", "ild"]
    res = Evaluator(names, ks=(2,)).evaluate(FixedScores(SCORES), test, exclude=(train,))
    m = res.metrics
    # lists @2: u0 [i1, i2] (hit at rank 1: ndcg 1), u1 [i3, i2] (hit at rank 2: ndcg 1/log2(3) / 1)
    nd1 = 1 / np.log2(3)
    assert m["ndcg@2"] == pytest.approx((1 + nd1) / 2)
    assert m["itemcoverage@2"] == pytest.approx(3 / 4)  # i1, i2, i3
    # train counts: i0 3, i1 1, i2 0, i3 1 -> avg pop u0 (1+0)/2, u1 (1+0)/2
    assert m["averagepopularity@2"] == pytest.approx(0.5)
    # novelty with 4 users: -log2(1/4) = 2 bits for every listed item (i2 unseen counts once)
    assert m["novelty@2"] == pytest.approx(2.0)
    # head = top 20% of 4 items -> 1 item (i0, never listed): all exposure goes to the tail
    assert m["exposure@2:tail"] == pytest.approx(1.0)
    assert m["ndcg@2:gender=F"] == pytest.approx(1.0) and m["ndcg@2:gender=M"] == pytest.approx(nd1)
    assert m["ndcg_gap@2:gender"] == pytest.approx(1 - nd1)
    assert m["ndcg@2:age=18-24"] == pytest.approx(1.0) and np.isnan(m["ndcg@2:age=56+"])
    # u0 profile {i0}: A=1; list [i1, i2]: A .25, B .75 -> KL(p||q~) = ln(1 / (0.99*0.25 + 0.01))
    cal_u0 = np.log(1 / (0.99 * 0.25 + 0.01))
    assert res.per_user["calibration@2"][0] == pytest.approx(cal_u0)
    # ILD over genre one-hots: u0 [i1 {A,B}, i2 {B}] cos 1/√2; u1 [i3 {C}, i2 {B}] cos 0
    assert res.per_user["ild@2"] == pytest.approx([1 - 1 / np.sqrt(2), 1.0])


def test_context_groups_from_user_features() -> None:
    train, _ = _data()
    ctx = EvalContext.from_dataset(train)
    assert ctx.user_groups["gender"].names == ["F", "M"]
    assert ctx.user_groups["age"].codes.tolist() == [1, 2, 3, 6]  # 18-24, 25-34, 35-44, 56+
    assert ctx.user_groups["activity"].codes.tolist() == [1, 0, 1, 1]  # u1 has the most interactions
    assert ctx.genre_names == ["A", "B", "C"]


def test_ctr_and_rating_metrics_selectable() -> None:
    train, test = _data()
    res = Evaluator(["auc", "gauc", "logloss"], ks=(2,)).evaluate(FixedScores(SCORES), test, exclude=(train,))
    assert set(res.metrics) == {"auc", "gauc", "logloss"}
    assert 0.0 <= res.metrics["auc"] <= 1.0
    assert np.isnan(res.metrics["logloss"])  # FixedScores gives no probabilities
    with pytest.raises(ValueError, match="ratings"):
        Evaluator(["rmse"]).evaluate(FixedScores(SCORES), test, exclude=(train,))


def test_rating_metrics_known_answer() -> None:
    train, _ = _data()
    rated = Dataset(train.users, train.items, np.array([0, 1]), np.array([1, 2]), rating=np.array([4.0, 2.0]), name="r")

    class Rater(FixedScores):
        def predict_rating_indices(self, u, i):
            return np.array([3.0, 2.0])  # errors 1 and 0

    res = Evaluator(["rmse", "mae"]).evaluate(Rater(SCORES), rated, exclude=(train,))
    assert res.metrics["rmse"] == pytest.approx(np.sqrt(0.5))
    assert res.metrics["mae"] == pytest.approx(0.5)


def test_beyond_metrics_need_training_data() -> None:
    _, test = _data()
    with pytest.raises(ValueError, match="training split"):
        Evaluator(["itemcoverage"]).evaluate(FixedScores(SCORES), test)


class Reverse:
    """A re-ranker that reverses each row's candidates (checks the Evaluator's hook)."""

    pool = 3

    def rerank(self, user_idx, items, scores, k):
        return items[:, ::-1][:, :k], scores[:, ::-1][:, :k]


def test_reranker_hook_reorders_before_metrics() -> None:
    train, test = _data()
    # u0 top-3 [i1, i2, i3] reversed -> [i3, i2, i1]: the hit i1 falls out of the top 2
    res = Evaluator(["hit"], ks=(2,), reranker=Reverse(), keep_topk=True).evaluate(FixedScores(SCORES), test, exclude=(train,))
    assert res.topk_items[0].tolist() == [3, 2]
    assert res.per_user["hit@2"][0] == 0.0
