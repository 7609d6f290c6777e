"""Accuracy bands of the classic models on real MovieLens-100k (RS 8:1:1, seed 2020, full ranking).

RecBole 1.2.1 on the same protocol: Pop 0.1005*, ItemKNN 0.2834, BPR 0.2928, EASE 0.3295 NDCG@10
(*RecBole's Pop counts differently). Our split draws its own permutation, so per-model values move
by about ±0.005 (ItemKNN over split seeds 1-3: 0.270-0.279).
"""

from __future__ import annotations

import pytest

from fusionrec.data import split
from fusionrec.evaluation import Evaluator
from fusionrec.models.classic.bpr import BPR
from fusionrec.models.classic.ease import EASE
from fusionrec.models.classic.itemknn import ItemKNN
from fusionrec.models.classic.pop import Pop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rs_split(ml100k):
    return split(ml100k, "rs", (0.8, 0.1, 0.1), seed=2020)


def _ndcg(model, sp) -> float:
    return Evaluator(ks=(10,)).evaluate_split(model, sp).metrics["ndcg@10"]


def test_pop_band(rs_split) -> None:
    assert 0.13 <= _ndcg(Pop().fit(rs_split.train), rs_split) <= 0.16


def test_ease_band(rs_split) -> None:
    assert _ndcg(EASE().fit(rs_split.train), rs_split) >= 0.32


def test_itemknn_band(rs_split) -> None:
    # RecBole defaults (k=100, shrink=0) measure 0.2751 here; neighbourhoods equal a dense brute force
    assert _ndcg(ItemKNN().fit(rs_split.train), rs_split) >= 0.27
    assert _ndcg(ItemKNN(k=200).fit(rs_split.train), rs_split) >= 0.28


def test_bpr_band(rs_split) -> None:
    model = BPR(device="cpu").fit(rs_split.train, rs_split.valid, seed=2020)
    assert model.history_.best_epoch is not None
    assert _ndcg(model, rs_split) >= 0.285
