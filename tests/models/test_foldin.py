"""Fold-in: the closed-form step (hand-computed), and feedback moving a user's next list."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.models import get_model
from fusionrec.models.foldin import fold_in_delta, fold_in_scores, item_factors
from fusionrec.testing.toy import toy_dataset


def test_delta_known_answer():
    v = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    scores = np.array([0.0, 0.5, 3.0])  # target = max = 3
    # one item, tiny reg: item 0 pulled to 3 exactly -> Δ = (3, 0) up to λ
    d = fold_in_delta(v, scores, np.array([0]), reg=0.0)
    np.testing.assert_allclose(d, [3.0, 0.0], atol=1e-9)
    # item 1 with reg=1: λ = 1 * |v1|² = 4; Δ = (v1ᵀv1 + 4I)⁻¹ v1 r = 2 * 2.5 / (4 + 4) on axis 1
    d = fold_in_delta(v, scores, np.array([1]), reg=1.0)
    np.testing.assert_allclose(d, [0.0, 0.625], atol=1e-9)
    # an item already at the target is not moved
    np.testing.assert_allclose(fold_in_delta(v, scores, np.array([2]), reg=0.0), 0.0, atol=1e-9)
    assert fold_in_delta(v, scores, np.array([], int)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="reg"):
        fold_in_delta(v, scores, np.array([0]), reg=-1)


def _share_b(items: list[str], n_items: int) -> float:
    return float(np.mean([int(i[1:]) >= n_items // 2 for i in items]))


@pytest.mark.parametrize(
    "name,params",
    [
        ("bpr", {"embedding_dim": 8, "epochs": 30, "batch_size": 64, "lr": 0.05}),
        ("lightgcn", {"embedding_dim": 8, "epochs": 20, "batch_size": 64, "lr": 0.05}),
    ],
)
def test_feedback_on_group_b_moves_a_group_a_user_towards_b(name, params):
    ds = toy_dataset(n_users=40, n_items=40, seed=0, noise=0.0)
    model = get_model(name)(**params).fit(ds, seed=0)
    assert item_factors(model) is not None
    user = "u0"  # group A (items i0..i19); group B = i20..i39
    before = model.recommend([user], k=10)["item_id"].tolist()
    assert _share_b(before, 40) <= 0.2  # the trained model recommends A to an A user
    feedback = [f"i{j}" for j in range(20, 26)]
    after = model.recommend([user], k=10, histories=[feedback])
    items = after["item_id"].tolist()
    assert not set(items) & set(feedback)  # feedback items are hidden, as before
    assert _share_b(items, 40) >= _share_b(before, 40) + 0.5  # the list moved towards B


def test_models_without_factors_are_unchanged():
    ds = toy_dataset(n_users=20, n_items=20, seed=0)
    ease = get_model("ease")(reg_weight=10.0).fit(ds)
    assert item_factors(ease) is None
    assert fold_in_scores(ease, np.zeros(20, np.float32), np.array([1])) is None
