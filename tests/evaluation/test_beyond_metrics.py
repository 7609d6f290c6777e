"""Known answers (worked by hand in the comments) for the beyond-accuracy and fairness metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.evaluation import beyond, diversity, fairness

# two users' top-2 lists over 4 items; training counts 5, 1, 0, 2
REC = np.array([[0, 1], [0, 2]])
COUNT = np.array([5, 1, 0, 2])


def test_item_coverage() -> None:
    assert beyond.item_coverage(REC, 4, 2) == pytest.approx(3 / 4)  # items 0, 1, 2
    assert beyond.item_coverage(REC, 4, 1) == pytest.approx(1 / 4)  # item 0 only


def test_gini_index() -> None:
    # counts of recommended items sorted: [1, 1, 2] at positions 2, 3, 4 of |I| = 4
    # Σ(2i-5)·P = (-1)(1) + (1)(1) + (3)(2) = 6; / (4 slots) / (4 items) = 0.375
    assert beyond.gini_index(REC, 4, 2) == pytest.approx(0.375)
    # k=1: item 0 twice at position 4: (8-5)*2 / 2 / 4 = 0.75
    assert beyond.gini_index(REC, 4, 1) == pytest.approx(0.75)


def test_shannon_entropy() -> None:
    # p = [2/4, 1/4, 1/4]: H = 0.5 ln 2 + 2 (0.25 ln 4) = 1.5 ln 2, divided by 3 distinct items
    assert beyond.shannon_entropy(REC, 2) == pytest.approx(1.5 * math.log(2) / 3)
    assert beyond.shannon_entropy(REC, 1) == pytest.approx(0.0)


def test_average_popularity() -> None:
    assert beyond.average_popularity(REC, COUNT, 2) == pytest.approx([3.0, 2.5])
    assert beyond.average_popularity(REC, COUNT, 2).mean() == pytest.approx(2.75)


def test_tail_percentage() -> None:
    # seen items by count: 1 (1), 3 (2), 0 (5); 10% of 3 -> max(int(0.3), 1) = 1 tail item: {1}
    assert beyond.tail_items(COUNT, 0.1).tolist() == [False, True, False, False]
    assert beyond.tail_percentage(REC, COUNT, 2).tolist() == [0.5, 0.0]
    # ratio > 1 is a count threshold; item 2 has no training interaction, so it is not tail
    assert beyond.tail_items(COUNT, 2).tolist() == [False, True, False, True]


def test_list_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="k=3"):
        beyond.item_coverage(REC, 4, 3)
    with pytest.raises(ValueError, match="integer"):
        beyond.gini_index(REC.astype(float), 4, 2)


def test_intra_list_diversity() -> None:
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # pairs: (0,1) cos 0 -> 1; (0,2), (1,2) cos 1/√2 -> 1 - 0.7071 each; mean of 3
    want = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    assert diversity.intra_list_diversity(np.array([[0, 1, 2]]), v, 3) == pytest.approx([want])
    assert diversity.intra_list_diversity(np.array([[0, 0]]), v, 2) == pytest.approx([0.0])
    assert diversity.intra_list_diversity(np.array([[0, 1]]), v, 1) == pytest.approx([0.0])


def test_novelty() -> None:
    # 10 users: p(0) = 0.5 -> 1 bit; p(1) = 0.1 -> 3.3219 bits; item 2 (unseen) counts as seen once
    got = diversity.novelty(np.array([[0, 1], [2, 3]]), COUNT, 10, 2)
    assert got == pytest.approx([(1 + math.log2(10)) / 2, (math.log2(10) + math.log2(5)) / 2])


def test_serendipity() -> None:
    rec = np.array([[0, 1, 2]])
    hits = np.array([[True, True, False]])
    primitive = np.array([[0, 5, 6]])  # item 0 is obvious: only item 1 is relevant and unexpected
    assert diversity.serendipity(rec, hits, primitive, 3) == pytest.approx([1 / 3])
    assert diversity.serendipity(rec, hits, primitive, 1) == pytest.approx([0.0])


def test_genre_distribution_and_calibration() -> None:
    genres = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1]]))  # item0 {A}, item1 {A,B}, item2 {B}
    # list [0, 1]: A gets 1 + 0.5, B gets 0.5, over 2 items -> [0.75, 0.25]
    assert diversity.genre_distribution(genres, np.array([[0, 1]])) == pytest.approx(np.array([[0.75, 0.25]]))
    p = np.array([[0.5, 0.5]])
    q = np.array([[1.0, 0.0]])
    # q~ = 0.99 q + 0.01 p = [0.995, 0.005]; KL = 0.5 ln(0.5/0.995) + 0.5 ln(0.5/0.005)
    want = 0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005)
    assert diversity.calibration_kl(p, q) == pytest.approx([want])
    assert diversity.calibration_kl(p, p) == pytest.approx([0.0])


def test_exposure_by_group() -> None:
    groups = np.array([0, 1])  # item 0 head, item 1 tail
    w2 = 1 / math.log2(3)
    both = fairness.exposure_by_group(np.array([[0, 1], [1, 0]]), groups, ["head", "tail"], 2)
    assert both == pytest.approx({"head": 0.5, "tail": 0.5})
    one = fairness.exposure_by_group(np.array([[0, 1]]), groups, ["head", "tail"], 2)
    assert one == pytest.approx({"head": 1 / (1 + w2), "tail": w2 / (1 + w2)})


def test_group_means_and_gap() -> None:
    m = fairness.group_means(np.array([0.2, 0.4, 0.6, 1.0]), np.array([0, 0, 1, 1]), ["F", "M"])
    assert m == pytest.approx({"F": 0.3, "M": 0.8})
    assert fairness.group_gap(m) == pytest.approx(0.5)
    assert math.isnan(fairness.group_gap({"F": 0.3, "M": float("nan")}))


def test_popularity_groups() -> None:
    assert fairness.popularity_groups(COUNT, 0.5).tolist() == [0, 1, 1, 0]  # items 0 and 3 are head
    with pytest.raises(ValueError, match="head_share"):
        fairness.popularity_groups(COUNT, 1.5)
