"""ml-100k (RS 8:1:1, seed 2020) bands for the strategies. Slow: deselected by default."""

from __future__ import annotations

import pytest

from fusionrec.data.splits import split
from fusionrec.evaluation.evaluator import Evaluator
from fusionrec.models.registry import get_model
from fusionrec.strategies.distill import Distilled, distill, parameter_count
from fusionrec.strategies.ensemble import Ensemble
from fusionrec.strategies.label_propagation import LabelPropagation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(ml100k):
    sp = split(ml100k, "rs", (0.8, 0.1, 0.1), seed=2020)
    ease = get_model("ease")().fit(sp.train, seed=2020)
    return sp, ease, Evaluator(ks=(10,))


def test_ensemble_not_worse_than_best_member(setup):
    sp, ease, ev = setup
    knn = get_model("itemknn")().fit(sp.train, seed=2020)
    ens = Ensemble.from_models([ease, knn], normalisation="minmax").fit_weights(
        sp.valid, sp.train, seed=2020
    )
    best = max(ev.evaluate_split(m, sp)["ndcg@10"] for m in (ease, knn))
    assert ev.evaluate_split(ens, sp)["ndcg@10"] > best - 0.005


def test_kd_student_beats_student_alone_with_far_fewer_parameters(setup):
    sp, ease, ev = setup
    base = dict(embedding_size=8, epochs=15, eval_every=5, patience=0, lr=0.01)
    alone = Distilled(lam=0.0, **base).fit(sp.train, seed=2020)
    kd = distill(ease, sp.train, seed=2020, lam=0.5, temperature=2.0, **base)
    assert parameter_count(kd) * 5 <= parameter_count(ease)
    assert ev.evaluate_split(kd, sp)["ndcg@10"] > ev.evaluate_split(alone, sp)["ndcg@10"] + 0.02


def test_label_propagation_band(setup):
    sp, _, ev = setup
    m = LabelPropagation().fit(sp.train)
    assert ev.evaluate_split(m, sp)["ndcg@10"] > 0.15
