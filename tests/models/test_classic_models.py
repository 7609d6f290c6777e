"""Known-answer tests for Pop, EASE, ItemKNN and BPR on hand-made data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fusionrec.data import Dataset
from fusionrec.models.classic.bpr import BPR
from fusionrec.models.classic.ease import EASE
from fusionrec.models.classic.itemknn import ItemKNN, item_cosine_topk
from fusionrec.models.classic.pop import Pop
from fusionrec.testing import checkerboard


def _ds(pairs: list[tuple[str, str]], name: str = "hand") -> Dataset:
    return Dataset.from_frames(pd.DataFrame(pairs, columns=["user_id", "item_id"]), name=name)


# ------------------------------------------------------------------------ checkerboard
@pytest.mark.parametrize(
    "make",
    [
        lambda: EASE(reg_weight=1.0),
        lambda: ItemKNN(k=10),
        lambda: BPR(epochs=30, lr=0.05, batch_size=64, embedding_dim=8, patience=0, device="cpu"),
    ],
    ids=["ease", "itemknn", "bpr"],
)
def test_checkerboard_in_group_item_first(make, guard_mutation) -> None:
    ds, target = checkerboard(users_per_group=20, items_per_group=5)
    guard_mutation(ds)
    model = make().fit(ds, seed=1)
    rec = model.recommend(list(target), k=1)
    got = dict(zip(rec["user_id"], rec["item_id"], strict=True))
    assert got == target


def test_pop_ranks_by_training_count() -> None:
    ds = _ds(
        [("u1", "a"), ("u2", "a"), ("u3", "a"), ("u1", "b"), ("u2", "b"), ("u3", "c"), ("u4", "d")]
    )
    m = Pop().fit(ds)
    np.testing.assert_array_equal(m.score(["u4"], ["a", "b", "c", "d"]), [[3, 2, 1, 1]])
    rec = m.recommend(["u4", "u1"], k=2)
    assert rec[rec.user_id == "u4"].item_id.tolist() == ["a", "b"]
    assert rec[rec.user_id == "u1"].item_id.tolist() == [
        "c",
        "d",
    ]  # a, b seen; tie c/d: lower index first


# ------------------------------------------------------------------------------ EASE
def test_ease_closed_form_3x3() -> None:
    # X = [[1,1,0],[0,1,1]], λ = 1: G+λI = [[2,1,0],[1,3,1],[0,1,2]], det 8,
    # P = [[5,-2,1],[-2,4,-2],[1,-2,5]]/8, B_ij = -P_ij/P_jj (zero diagonal).
    ds = _ds([("u0", "i0"), ("u0", "i1"), ("u1", "i1"), ("u1", "i2")])
    m = EASE(reg_weight=1.0).fit(ds)
    expected_b = np.array([[0, 0.5, -0.2], [0.4, 0, 0.4], [-0.2, 0.5, 0]])
    np.testing.assert_allclose(m.B_, expected_b, atol=1e-6)
    # user u0 (x = [1,1,0]) scores x·B = [0.4, 0.5, 0.2]
    np.testing.assert_allclose(m.score(["u0"]), [[0.4, 0.5, 0.2]], atol=1e-6)
    np.testing.assert_allclose(m.score_histories([np.array([0, 1])]), [[0.4, 0.5, 0.2]], atol=1e-6)


# ---------------------------------------------------------------------------- ItemKNN
# users x items (a b c d):
#   u0: a b        |U_a|=2  |U_b|=3  |U_c|=2  |U_d|=1
#   u1: a b c      co(a,b)=2 co(a,c)=1 co(b,c)=2 co(b,d)=1 co(c,d)=1 co(a,d)=0
#   u2:   b c d    cos(a,b)=2/√6  cos(a,c)=1/2  cos(b,c)=2/√6  cos(b,d)=1/√3  cos(c,d)=1/√2
_KNN_PAIRS = [
    ("u0", "a"),
    ("u0", "b"),
    ("u1", "a"),
    ("u1", "b"),
    ("u1", "c"),
    ("u2", "b"),
    ("u2", "c"),
    ("u2", "d"),
]


def test_itemknn_cosine_values() -> None:
    ds = _ds(_KNN_PAIRS)
    m = ItemKNN(k=10).fit(ds)
    s = m.sim_.toarray()
    a, b, c, d = ds.items.to_idx(["a", "b", "c", "d"])
    r6, r3, r2 = np.sqrt(6), np.sqrt(3), np.sqrt(2)
    expected = {
        (a, b): 2 / r6,
        (a, c): 0.5,
        (a, d): 0.0,
        (b, c): 2 / r6,
        (b, d): 1 / r3,
        (c, d): 1 / r2,
    }
    for (i, j), v in expected.items():
        assert s[i, j] == pytest.approx(v, abs=1e-6) and s[j, i] == pytest.approx(v, abs=1e-6)
    assert np.all(np.diag(s) == 0)
    # score(u0, c) = sim(c,a) + sim(c,b) = 1/2 + 2/√6 ; score(u0, d) = sim(d,b) = 1/√3
    np.testing.assert_allclose(m.score(["u0"], ["c", "d"]), [[0.5 + 2 / r6, 1 / r3]], atol=1e-6)


def test_itemknn_shrink_and_topk_truncation() -> None:
    ds = _ds(_KNN_PAIRS)
    a, b, c, d = ds.items.to_idx(["a", "b", "c", "d"])
    # shrink 1: sim(c,d) = 1/(√2·1 + 1), sim(c,a) = 1/(2+1), sim(c,b) = 2/(√6+1)
    s = ItemKNN(k=10, shrink=1.0).fit(ds).sim_.toarray()
    assert s[c, d] == pytest.approx(1 / (np.sqrt(2) + 1), abs=1e-6)
    assert s[c, a] == pytest.approx(1 / 3, abs=1e-6)
    assert s[c, b] == pytest.approx(2 / (np.sqrt(6) + 1), abs=1e-6)
    # k = 1: each item keeps only its best neighbour
    # a: b (0.816) ; b: a/c tie at 0.816 -> lower index (a) ; c: b (0.816 > 0.707) ; d: c (0.707 > 0.577)
    m1 = ItemKNN(k=1).fit(ds)
    s1 = m1.sim_.toarray()
    assert (np.count_nonzero(s1, axis=1) == 1).all()
    assert [int(np.argmax(s1[i])) for i in (a, b, c, d)] == [b, min(a, c), b, c]
    # scores use item i's neighbourhood only: score(u, d) = x_u,c · sim(d, c)
    np.testing.assert_allclose(m1.score(["u1"], ["d"]), [[1 / np.sqrt(2)]], atol=1e-6)
    sim = m1.similar_items(["d"], k=5)
    assert sim.similar_item_id.tolist() == ["c"]


def test_itemknn_blocked_build_equals_one_block(monkeypatch) -> None:
    import fusionrec.models.classic.itemknn as knn

    rng = np.random.default_rng(0)
    x = sp.random(80, 50, density=0.15, random_state=rng, format="csr")
    x.data[:] = 1.0
    one = item_cosine_topk(x, k=7, shrink=0.5)
    monkeypatch.setattr(knn, "_BLOCK_BUDGET", 50)
    many = item_cosine_topk(x, k=7, shrink=0.5)
    assert abs(one - many).max() == 0
    # against dense brute force (value sets per row; ties may pick different columns)
    g = (x.T @ x).toarray()
    n = np.sqrt(np.diag(g))
    dense = g / (n[:, None] * n[None, :] + 0.5)
    np.fill_diagonal(dense, 0)
    for i in range(50):
        top = np.sort(dense[i])[::-1][:7]
        got = np.sort(one[i].toarray().ravel())[::-1][:7]
        np.testing.assert_allclose(got, top, atol=1e-6)


def test_itemknn_never_builds_dense_item_matrix() -> None:
    # 200k items would need 160 GB dense; the sparse build handles it in well under a second
    n_users, n_items = 2000, 200_000
    rng = np.random.default_rng(1)
    rows = np.repeat(np.arange(n_users), 5)
    cols = rng.integers(0, n_items, len(rows))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    x.data[:] = 1.0
    s = item_cosine_topk(x, k=3)
    assert s.shape == (n_items, n_items) and s.nnz <= 3 * n_items


# -------------------------------------------------------------------------------- BPR
def test_bpr_batches_cover_every_interaction_once() -> None:
    ds, _ = checkerboard()
    m = BPR(epochs=1, batch_size=7, num_negatives=3, device="cpu", patience=0).fit(ds, seed=0)
    batches = list(m.batches(ds, np.random.default_rng(5)))
    users = np.concatenate([b["user"].numpy() for b in batches])
    pos = np.concatenate([b["pos"].numpy() for b in batches])
    neg = np.concatenate([b["neg"].numpy() for b in batches])
    assert [len(b["user"]) for b in batches] == [7] * 5 + [1]
    assert neg.shape == (36, 3)
    got = sorted(zip(users.tolist(), pos.tolist(), strict=True))
    want = sorted(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), strict=True))
    assert got == want
    seen = ds.matrix("csr").toarray().astype(bool)
    assert not seen[users[:, None], neg].any()  # negatives are never the user's positives


def test_bpr_loss_value_and_item_vectors() -> None:
    import torch

    from fusionrec.models.classic.bpr import BPRModule

    mod = BPRModule(2, 3, 2, reg_weight=0.5)
    with torch.no_grad():
        mod.user.weight[:] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        mod.item.weight[:] = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    batch = {"user": torch.tensor([0]), "pos": torch.tensor([0]), "neg": torch.tensor([[1, 2]])}
    out = mod.loss(batch)
    # x_pos = 2, x_neg = 0, 0 -> -log σ(2) ; reg = 0.5 (1 + 4 + 0 + 1)
    assert float(out["bpr"].detach()) == pytest.approx(-np.log(1 / (1 + np.exp(-2))), abs=1e-6)
    assert float(out["reg"].detach()) == pytest.approx(3.0)
    ds, _ = checkerboard()
    m = BPR(epochs=2, embedding_dim=4, device="cpu").fit(ds)
    assert m.item_vectors().shape == (ds.n_items, 4)
