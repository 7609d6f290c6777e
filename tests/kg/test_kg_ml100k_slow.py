"""ml-100k accuracy bands (RS 8:1:1, seed 2020, full ranking) for mm_mf, cke and kgat with their
default settings: the same runs as benchmarks/kg_ablation.py's id / kg / kgat rows. Measured
values are in the comments; the bands leave a margin. Slow (minutes): deselected by default."""

from __future__ import annotations

import pytest

from fusionrec.data import split
from fusionrec.evaluation import Evaluator
from fusionrec.models import get_model

pytestmark = pytest.mark.slow

SEED = 2020


@pytest.fixture(scope="module")
def setup(ml100k):
    sp_ = split(ml100k, "rs", (0.8, 0.1, 0.1), seed=SEED)
    sparse = sp_.train.user_activity() < 20  # the ablation's slice
    return sp_, sparse, Evaluator(metrics=("ndcg", "recall"), ks=(10,))


def _evaluate(name, setup, **params):
    sp_, sparse, ev = setup
    m = get_model(name)(device="cpu", **params).fit(sp_.train, sp_.valid, seed=SEED)
    res = ev.evaluate_split(m, sp_)
    return res["ndcg@10"], res.slice(sparse)["ndcg@10"], res["recall@10"]


@pytest.fixture(scope="module")
def id_only(setup):
    return _evaluate("mm_mf", setup)


def test_mm_mf_id_only_is_as_strong_as_bpr(id_only):
    ndcg, sparse_ndcg, recall = id_only
    # measured 0.2929 / <20: 0.2398 / recall 0.2533 (bpr on the same split: 0.2881 / 0.2372)
    assert ndcg >= 0.28 and sparse_ndcg >= 0.22 and recall >= 0.23, id_only


def test_cke_matches_id_only_and_gains_on_sparse_users(setup, id_only):
    ndcg, sparse_ndcg, recall = _evaluate("cke", setup)
    # measured 0.2924 / <20: 0.2542 / recall 0.2438, vs ID-only 0.2929 / 0.2398: a tie overall
    # and +0.014 on users with < 20 training interactions (the KG's cold-ish-user gain)
    assert ndcg >= 0.28 and recall >= 0.23, (ndcg, sparse_ndcg, recall)
    assert ndcg > id_only[0] - 0.01, (ndcg, id_only)
    assert sparse_ndcg > id_only[1] + 0.005, (sparse_ndcg, id_only)


def test_kgat_is_competitive_with_id_only(setup, id_only):
    ndcg, sparse_ndcg, recall = _evaluate("kgat", setup)
    # measured 0.2801 / <20: 0.2485 / recall 0.2354 (47 epochs; before the fixes: 0.1318)
    assert ndcg >= 0.265 and sparse_ndcg >= 0.22 and recall >= 0.22, (ndcg, sparse_ndcg, recall)
    assert ndcg > id_only[0] - 0.03, (ndcg, id_only)
