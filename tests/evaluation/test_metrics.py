"""Hand-computed values and properties of the pure metric functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fusionrec.evaluation import metrics as M

# user 0: hits at ranks 1 and 3 of 5, 3 positives
# user 1: hit at rank 2, 1 positive
# user 2: no hit, 2 positives
# user 3: hits at ranks 1, 2, 4, 5; 7 positives (more positives than k)
HITS = np.array(
    [
        [1, 0, 1, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [1, 1, 0, 1, 1],
    ],
    dtype=bool,
)
NPOS = np.array([3, 1, 2, 7])
L2, L3, L4, L5, L6 = (np.log2(x) for x in (2, 3, 4, 5, 6))


def test_recall_precision_hit_at_5() -> None:
    np.testing.assert_allclose(M.recall(HITS, NPOS, 5), [2 / 3, 1, 0, 4 / 7])
    np.testing.assert_allclose(M.precision(HITS, NPOS, 5), [2 / 5, 1 / 5, 0, 4 / 5])
    np.testing.assert_allclose(M.hit(HITS, NPOS, 5), [1, 1, 0, 1])


def test_metrics_at_smaller_k_use_prefix() -> None:
    np.testing.assert_allclose(M.recall(HITS, NPOS, 2), [1 / 3, 1, 0, 2 / 7])
    np.testing.assert_allclose(M.precision(HITS, NPOS, 1), [1, 0, 0, 1])
    np.testing.assert_allclose(M.hit(HITS, NPOS, 1), [1, 0, 0, 1])


def test_mrr() -> None:
    np.testing.assert_allclose(M.mrr(HITS, NPOS, 5), [1, 1 / 2, 0, 1])
    np.testing.assert_allclose(M.mrr(HITS, NPOS, 1), [1, 0, 0, 1])


def test_ndcg() -> None:
    u0 = (1 / 1 + 1 / L4) / (1 + 1 / L3 + 1 / L4)  # ideal: 3 hits
    u1 = (1 / L3) / 1.0  # ideal: 1 hit
    u3 = (1 + 1 / L3 + 1 / L5 + 1 / L6) / (
        1 + 1 / L3 + 1 / L4 + 1 / L5 + 1 / L6
    )  # ideal capped at k=5
    np.testing.assert_allclose(M.ndcg(HITS, NPOS, 5), [u0, u1, 0, u3])


def test_map() -> None:
    u0 = (1 / 1 + 2 / 3) / 3
    u1 = (1 / 2) / 1
    u3 = (1 + 1 + 3 / 4 + 4 / 5) / 5  # divided by min(7, k) = 5
    np.testing.assert_allclose(M.average_precision(HITS, NPOS, 5), [u0, u1, 0, u3])
    np.testing.assert_allclose(M.average_precision(HITS, NPOS, 2), [1 / 2, 1 / 2, 0, 1])


def test_topk_metric_input_errors() -> None:
    with pytest.raises(ValueError, match="k=6"):
        M.recall(HITS, NPOS, 6)
    with pytest.raises(ValueError, match="positive"):
        M.recall(HITS, np.array([3, 0, 2, 7]), 5)
    with pytest.raises(ValueError, match="n_users"):
        M.ndcg(HITS, NPOS[:2], 5)


def test_auc_with_ties() -> None:
    # positives 0.8, 0.5 ; negatives 0.5, 0.2 -> pairs: (0.8>0.5) (0.8>0.2) (0.5=0.5: 1/2) (0.5>0.2)
    assert M.auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]) == pytest.approx(3.5 / 4)
    assert M.auc([1, 0], [0.3, 0.3]) == pytest.approx(0.5)
    assert M.auc([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="both"):
        M.auc([1, 1], [0.2, 0.3])


def test_gauc_weights_by_group_size_and_skips_one_class_groups() -> None:
    groups = [1, 1, 1, 2, 2, 3, 3]
    labels = [1, 0, 0, 0, 1, 1, 1]
    scores = [0.9, 0.5, 0.95, 0.1, 0.2, 0.3, 0.4]
    # group 1: pos 0.9 vs neg 0.5 (win) and 0.95 (loss) -> 1/2, size 3 ; group 2: 1, size 2 ; group 3 skipped
    assert M.gauc(groups, labels, scores) == pytest.approx((0.5 * 3 + 1.0 * 2) / 5)
    with pytest.raises(ValueError, match="GAUC"):
        M.gauc([1, 2], [1, 0], [0.1, 0.2])


def test_log_loss_rmse_mae() -> None:
    assert M.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    assert M.log_loss([1], [0.0]) == pytest.approx(-np.log(1e-7))  # clipped, finite
    assert M.rmse([1, 2, 3], [1, 4, 0]) == pytest.approx(np.sqrt((0 + 4 + 9) / 3))
    assert M.mae([1, 2, 3], [1, 4, 0]) == pytest.approx(5 / 3)


_hits_st = st.integers(1, 6).flatmap(
    lambda k: st.tuples(
        arrays(bool, st.tuples(st.integers(1, 5), st.just(k))),
        st.integers(1, k),
    )
)


@settings(max_examples=60, deadline=None)
@given(_hits_st, st.integers(0, 10))
def test_topk_metrics_bounded(hk, extra) -> None:
    hits, k = hk
    n_pos = hits.sum(1) + extra + (hits.sum(1) == 0)  # at least the hits, at least one
    for name, fn in M.TOPK_METRICS.items():
        v = fn(hits, n_pos, k)
        assert v.shape == (hits.shape[0],)
        assert np.all((v >= 0) & (v <= 1 + 1e-12)), name


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8))
def test_perfect_ranking_scores_one(n_pos, k) -> None:
    hits = np.zeros((1, k), bool)
    hits[0, : min(n_pos, k)] = True
    for name in ("ndcg", "map", "hit", "mrr"):
        assert M.TOPK_METRICS[name](hits, np.array([n_pos]), k)[0] == pytest.approx(1.0), name
    assert M.recall(hits, np.array([n_pos]), k)[0] == pytest.approx(min(n_pos, k) / n_pos)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(-5, 5)), st.data())
def test_auc_bounds_and_flip(scores, data) -> None:
    labels = data.draw(arrays(bool, len(scores)))
    if labels.all() or not labels.any():
        return
    a = M.auc(labels, scores)
    assert 0 <= a <= 1
    assert M.auc(~labels, scores) == pytest.approx(1 - a)
