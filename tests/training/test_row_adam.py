"""RowAdam: torch.optim.SparseAdam's lazy semantics (equal to it step by step on both the row and
the whole-table path), a hand-computed two-step case, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from fusionrec.errors import ConfigError
from fusionrec.training.row_adam import RowAdam, coalesce_rows
from fusionrec.training.row_sgd import row_grad


def _sparse_grad(shape: tuple[int, int], rows: list[int], values: torch.Tensor) -> torch.Tensor:
    return row_grad(torch.Size(shape), torch.tensor(rows), values, sparse=True)


@pytest.mark.parametrize("n_rows", [40, 6])  # batch shorter than the table (row path), longer (table path)
def test_equals_torch_sparse_adam(n_rows: int) -> None:
    g = torch.Generator().manual_seed(0)
    init = torch.randn(n_rows, 3, generator=g)
    ours, ref = torch.nn.Parameter(init.clone()), torch.nn.Parameter(init.clone())
    opt, opt_ref = RowAdam([ours], lr=0.05), torch.optim.SparseAdam([ref], lr=0.05)
    for step in range(5):
        rows = torch.randint(0, min(n_rows, 8), (10,), generator=g)  # duplicates; rows 8.. never touched
        vals = torch.randn(10, 3, generator=g)
        for p, o in ((ours, opt), (ref, opt_ref)):
            p.grad = row_grad(p.shape, rows, vals, sparse=True)
            o.step()
        torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-6, atol=1e-7, msg=f"step {step}")
        torch.testing.assert_close(opt.state[ours]["exp_avg"], opt_ref.state[ref]["exp_avg"], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(opt.state[ours]["exp_avg_sq"], opt_ref.state[ref]["exp_avg_sq"], rtol=1e-6, atol=1e-7)
    if n_rows > 8:  # untouched rows: parameters exactly as initialised, moments exactly zero
        assert torch.equal(ours.detach()[8:], init[8:])
        assert not opt.state[ours]["exp_avg"][8:].any()
    assert opt.state[ours]["step"] == 5


def test_two_steps_by_hand() -> None:
    # one 1-d row out of three; step 1 touches row 0 twice (grads 1 and 3: sum 4), step 2 row 2
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.1
    w = torch.nn.Parameter(torch.zeros(3, 1))
    opt = RowAdam([w], lr=lr, betas=(b1, b2), eps=eps)
    w.grad = _sparse_grad((3, 1), [0, 0], torch.tensor([[1.0], [3.0]]))
    opt.step()
    m0, v0 = 0.1 * 4, 0.001 * 16  # (1 - b) * g
    step1 = lr * math.sqrt(1 - b2) / (1 - b1) * m0 / (math.sqrt(v0) + eps)  # = 0.1 (Adam's first step is lr)
    assert step1 == pytest.approx(0.1)
    torch.testing.assert_close(w.detach().squeeze(1), torch.tensor([-step1, 0.0, 0.0]))
    w.grad = _sparse_grad((3, 1), [2], torch.tensor([[-2.0]]))
    opt.step()
    # row 0 untouched: keeps its value and moments; row 2: first moments at global step 2
    m2, v2 = 0.1 * -2, 0.001 * 4
    step2 = lr * math.sqrt(1 - b2**2) / (1 - b1**2) * m2 / (math.sqrt(v2) + eps)
    torch.testing.assert_close(w.detach().squeeze(1), torch.tensor([-step1, 0.0, -step2]))
    torch.testing.assert_close(opt.state[w]["exp_avg"].squeeze(1), torch.tensor([m0, 0.0, m2]))
    torch.testing.assert_close(opt.state[w]["exp_avg_sq"].squeeze(1), torch.tensor([v0, 0.0, v2]))


def test_dense_gradient_is_plain_adam() -> None:
    init = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    ours, ref = torch.nn.Parameter(init.clone()), torch.nn.Parameter(init.clone())
    opt, opt_ref = RowAdam([ours], lr=0.01), torch.optim.Adam([ref], lr=0.01)
    for s in range(3):
        grad = torch.randn(5, 2, generator=torch.Generator().manual_seed(10 + s))
        ours.grad, ref.grad = grad.clone(), grad.clone()
        opt.step()
        opt_ref.step()
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-6, atol=1e-7)


def test_coalesce_rows_known_answer() -> None:
    rows, summed = coalesce_rows(torch.tensor([4, 1, 4, 0]), torch.tensor([[1.0], [2.0], [3.0], [4.0]]), 6)
    assert rows.tolist() == [0, 1, 4]
    assert summed.squeeze(1).tolist() == [4.0, 2.0, 4.0]


def test_bad_input() -> None:
    w = torch.nn.Parameter(torch.zeros(3, 2))
    with pytest.raises(ConfigError, match="lr must be > 0"):
        RowAdam([w], lr=0.0)
    with pytest.raises(ConfigError, match="betas"):
        RowAdam([w], lr=0.1, betas=(0.9, 1.0))
    with pytest.raises(ConfigError, match="eps"):
        RowAdam([w], lr=0.1, eps=0.0)
    w.grad = torch.sparse_coo_tensor(torch.tensor([[0], [1]]), torch.tensor([1.0]), (3, 2), check_invariants=True)
    with pytest.raises(ValueError, match="one sparse dimension"):
        RowAdam([w], lr=0.1).step()
