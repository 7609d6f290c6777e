"""BPR's closed-form loss/gradient and its row-sparse SGD: same numbers as torch autograd and
dense SGD, hand-computed cases, and the batches' sampling order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusionrec.data.synthetic import make_power_law
from fusionrec.models.classic.bpr import BPR, BPRModule
from fusionrec.training.row_sgd import RowSGD


def _batch(n_users: int, n_items: int, b: int, k: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "user": torch.randint(0, n_users, (b,), generator=g),
        "pos": torch.randint(0, n_items, (b,), generator=g),
        "neg": torch.randint(0, n_items, (b, k), generator=g),
    }


def _grads(m: BPRModule, batch: dict[str, torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
    m.zero_grad(set_to_none=True)
    out = m.loss(batch)
    loss = sum(out.values()) if isinstance(out, dict) else out
    loss.backward()
    return float(loss.detach()), [w.grad.to_dense().clone() for w in (m.user.weight, m.item.weight)]


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_closed_form_matches_autograd(k: int, sparse: bool, reg: float) -> None:
    torch.manual_seed(0)
    m = BPRModule(7, 11, 4, reg, sparse=sparse)
    batch = _batch(7, 11, 32, k)  # repeated rows: the row sums must add up
    loss, g = _grads(m, batch)
    m.closed_form = False
    loss_ref, g_ref = _grads(m, batch)
    assert loss == pytest.approx(loss_ref, rel=1e-6)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert m.user.weight.grad.is_sparse == sparse


def test_closed_form_known_answer() -> None:
    # one user (1, 0), positive (1, 0), negative (0, 1): x = 1; loss = log(1 + e^-1)
    m = BPRModule(1, 2, 2, 0.0)
    with torch.no_grad():
        m.user.weight.copy_(torch.tensor([[1.0, 0.0]]))
        m.item.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    batch = {"user": torch.tensor([0]), "pos": torch.tensor([0]), "neg": torch.tensor([[1]])}
    loss, (gu, gi) = _grads(m, batch)
    s = 1 / (1 + math.e)  # sigma(-1)
    assert loss == pytest.approx(math.log(1 + math.exp(-1)))
    # d/du = -s (p - n) = (-s, s); d/dp = -s u = (-s, 0); d/dn = s u = (s, 0)
    torch.testing.assert_close(gu, torch.tensor([[-s, s]]))
    torch.testing.assert_close(gi, torch.tensor([[-s, 0.0], [s, 0.0]]))


def test_row_sgd_equals_dense_sgd_step() -> None:
    torch.manual_seed(1)
    dense, sparse = BPRModule(9, 13, 5, 0.01), BPRModule(9, 13, 5, 0.01, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    opt_d = torch.optim.SGD(dense.parameters(), lr=0.7)
    opt_s = sparse.make_optimizer(type("C", (), {"lr": 0.7})(), list(sparse.parameters()))
    assert isinstance(opt_s, RowSGD) and dense.make_optimizer(None, []) is None  # type: ignore[arg-type]
    for step in range(3):
        batch = _batch(9, 13, 40, 2, seed=step)
        for m, opt in ((dense, opt_d), (sparse, opt_s)):
            opt.zero_grad()
            sum(m.loss(batch).values()).backward()
            opt.step()
    for a, b in zip(dense.parameters(), sparse.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_row_sgd_known_answer_and_bad_input() -> None:
    w = torch.zeros(3, 2, requires_grad=True)
    w.grad = torch.sparse_coo_tensor(torch.tensor([[2, 0, 2]]), torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), (3, 2), check_invariants=True)
    RowSGD([w], lr=0.5).step()
    torch.testing.assert_close(w.detach(), torch.tensor([[-1.5, -2.0], [0.0, 0.0], [-3.0, -4.0]]))
    with pytest.raises(Exception, match="lr must be > 0"):
        RowSGD([w], lr=0.0)


def test_fit_with_sgd_takes_the_row_sparse_path_and_matches_dense() -> None:
    ds = make_power_law(3000, seed=3, n_users=80, n_items=100)
    params = {"epochs": 2, "embedding_dim": 8, "optimizer": "sgd", "lr": 20.0, "batch_size": 256}
    a = BPR(**params).fit(ds, seed=5)
    b = BPR(**params, sparse_rows=False).fit(ds, seed=5)
    assert a.module_.sparse and not b.module_.sparse
    torch.testing.assert_close(a.module_.user.weight, b.module_.user.weight, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a.module_.item.weight, b.module_.item.weight, rtol=1e-4, atol=1e-5)
    assert not BPR(**{**params, "weight_decay": 0.1}).fit(ds, seed=5).module_.sparse  # decay moves every row


def test_negatives_drawn_in_user_order_stay_with_their_interaction() -> None:
    ds = make_power_law(2000, seed=1, n_users=40, n_items=500)
    model = BPR(epochs=1, embedding_dim=4, num_negatives=2)
    model.fit(ds, seed=0)
    seen = set(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), strict=True))
    batches = list(model.batches(ds, np.random.default_rng(7)))
    users = torch.cat([b["user"] for b in batches]).numpy()
    pos = torch.cat([b["pos"] for b in batches]).numpy()
    neg = torch.cat([b["neg"] for b in batches]).numpy()
    assert sorted(zip(users.tolist(), pos.tolist(), strict=True)) == sorted(seen)
    assert not any((u, j) in seen for u, row in zip(users.tolist(), neg.tolist(), strict=True) for j in row)
    assert not np.all(np.diff(users) >= 0)  # shuffled, not in user order


def test_adam_takes_the_lazy_row_path_equal_to_sparse_adam() -> None:
    from fusionrec.training.row_adam import RowAdam

    torch.manual_seed(2)
    ours, ref = BPRModule(9, 30, 5, 0.01, sparse=True), BPRModule(9, 30, 5, 0.01, sparse=True)
    ref.load_state_dict(ours.state_dict())
    opt = ours.make_optimizer(type("C", (), {"lr": 0.05, "optimizer": "adam"})(), list(ours.parameters()))
    assert isinstance(opt, RowAdam)
    # eps tiny on both: RowAdam adds eps after the bias correction (torch.optim.Adam's place),
    # SparseAdam before it, which shows at gradients this small (1e-4) in the first steps
    opt = RowAdam(list(ours.parameters()), lr=0.05, eps=1e-14)
    opt_ref = torch.optim.SparseAdam(list(ref.parameters()), lr=0.05, eps=1e-14)
    untouched = ours.item.weight.detach()[25:].clone()
    for step in range(3):
        batch = _batch(9, 25, 16, 1, seed=step)  # items 25..29 never appear
        for m, o in ((ours, opt), (ref, opt_ref)):
            o.zero_grad()
            sum(m.loss(batch).values()).backward()
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert torch.equal(ours.item.weight.detach()[25:], untouched)  # lazy: rows outside every batch stay


def test_fit_with_adam_row_path_choice() -> None:
    ds = make_power_law(3000, seed=3, n_users=80, n_items=100)
    params = {"epochs": 2, "embedding_dim": 8, "batch_size": 256, "adam_rows": "lazy"}
    assert BPR(**params).fit(ds, seed=5).module_.sparse
    assert not BPR(**params, weight_decay=0.01).fit(ds, seed=5).module_.sparse
    assert not BPR(**params, sparse_rows=False).fit(ds, seed=5).module_.sparse
    assert not BPR(**{**params, "adam_rows": "dense"}).fit(ds, seed=5).module_.sparse
    # auto: 100 items against 2 x 256 item rows read per batch -> the dense step; 12 per batch -> lazy
    assert not BPR(**{**params, "adam_rows": "auto"}).fit(ds, seed=5).module_.sparse
    assert BPR(**{**params, "adam_rows": "auto", "batch_size": 12}).fit(ds, seed=5).module_.sparse
