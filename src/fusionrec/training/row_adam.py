"""Lazy Adam that updates only the embedding rows a batch touched (``torch.optim.SparseAdam``'s
semantics, at the cost of the batch instead of the table).

A row a batch did not touch keeps its parameters and both moments; a touched row gets Adam's
step with its gradient summed over the batch (duplicates coalesced), the moments decayed once,
and the bias correction of the parameter's global step count (one per ``step()`` call), as
``torch.optim.SparseAdam`` does. The touched rows go through torch's fused Adam kernel, so eps
sits where ``torch.optim.Adam`` puts it (``sqrt(v / bc2) + eps``; SparseAdam adds eps before
the bias correction): equal to SparseAdam to 1e-6 relative in the tests, and equal to dense Adam
when every row is touched. Dense Adam instead decays every row's moments and moves every row
each step, which costs the whole table per step (56 MB at 162k users x 59k items x 64
dimensions) and keeps moving rows the batch never saw.

Written here rather than taken from torch because ``torch.optim.SparseAdam`` coalesces the
gradient by sorting and applies three sparse additions per step (``sparse_mask`` and
``index_add_`` inside; 1.7-2.6x slower per step in the measurements of docs/scale.md); this
one finds the touched rows with a boolean mask over the table's rows, sums duplicates with one
``scatter_add_``, gathers the rows' weights and moments, runs one fused kernel and writes them
back; when a quarter of the table or more is touched (MovieLens-100k, or 1M interactions, at
batch 4096) it steps the whole table with the fused kernel and puts the untouched rows back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from fusionrec.errors import ConfigError
from fusionrec.training.row_sgd import add_rows

__all__ = ["RowAdam", "coalesce_rows"]


class _Scratch:
    """Per-parameter buffers reused across steps (not optimiser state: never saved)."""

    def __init__(self, n_rows: int, device: torch.device) -> None:
        self.mask = torch.zeros(n_rows, dtype=torch.bool, device=device)
        self.slot = torch.zeros(n_rows, dtype=torch.int64, device=device)


def coalesce_rows(
    rows: torch.Tensor, values: torch.Tensor, n_rows: int, scratch: _Scratch | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of ``rows`` (ascending) and, for each, the sum of its ``values`` rows."""
    s = scratch or _Scratch(n_rows, rows.device)
    s.mask[rows] = True
    uniq = s.mask.nonzero().squeeze(1)
    s.mask[uniq] = False  # leave the mask clear for the next step
    return _sum_rows(rows, values, uniq, s)


def _sum_rows(
    rows: torch.Tensor, values: torch.Tensor, uniq: torch.Tensor, s: _Scratch
) -> tuple[torch.Tensor, torch.Tensor]:
    s.slot[uniq] = torch.arange(len(uniq), device=rows.device)
    summed = values.new_zeros((len(uniq), values.shape[1]))
    return uniq, add_rows(summed, s.slot[rows], values)


class RowAdam(torch.optim.Optimizer):
    """Adam on row gradients, lazily: moments and parameters change only in the rows present in
    the (sparse COO, one sparse dimension, duplicates allowed) gradient. A dense gradient counts
    every row as touched (then the step is plain Adam without weight decay).

    Args:
        params: parameters or parameter groups (each group may set its own ``lr``).
        lr: learning rate (> 0).
        betas: the moments' decay rates, each in [0, 1).
        eps: added to the square root of the second moment (> 0).
    """

    def __init__(
        self, params: Iterable[Any], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if not lr > 0:
            raise ConfigError(f"RowAdam lr must be > 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ConfigError(f"RowAdam betas must be two values in [0, 1), got {betas}")
        if not eps > 0:
            raise ConfigError(f"RowAdam eps must be > 0, got {eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})
        self._scratch: dict[int, _Scratch] = {}

    @torch.no_grad()
    def step(self, closure: Any = None) -> torch.Tensor | None:  # noqa: D102 - torch's contract
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                table = p.view(p.shape[0], -1)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                m_all = state["exp_avg"].view(table.shape)
                v_all = state["exp_avg_sq"].view(table.shape)
                if g.is_sparse:
                    if g.sparse_dim() != 1 or g.dense_dim() != p.dim() - 1:
                        raise ValueError(
                            f"RowAdam takes row gradients (one sparse dimension), got sparse_dim {g.sparse_dim()}"
                        )
                    if g._nnz() == 0:
                        continue
                state["step"] += 1
                if not g.is_sparse:  # every row touched: plain Adam
                    _adam(group, state["step"], table, g.reshape(table.shape), m_all, v_all)
                    continue
                scratch = self._scratch.get(id(p))
                if scratch is None or scratch.mask.shape[0] != p.shape[0]:
                    scratch = self._scratch[id(p)] = _Scratch(p.shape[0], p.device)
                rows, values = g._indices()[0], g._values().reshape(g._nnz(), -1)
                scratch.mask[rows] = True
                uniq = scratch.mask.nonzero().squeeze(1)
                if 4 * len(uniq) >= p.shape[0]:
                    # a quarter of the table or more touched: the whole-table fused step, then
                    # the untouched rows put back exactly as they were (measured cheaper than
                    # gathering and writing back the touched rows from there on)
                    grad = add_rows(torch.zeros_like(table), rows, values)
                    keep = (~scratch.mask).nonzero().squeeze(1)
                    scratch.mask.fill_(False)
                    old = [t.index_select(0, keep) for t in (table, m_all, v_all)]
                    _adam(group, state["step"], table, grad, m_all, v_all)
                    for t, prev in zip((table, m_all, v_all), old, strict=True):
                        t.index_copy_(0, keep, prev)
                    continue
                scratch.mask[uniq] = False
                rows, grad = _sum_rows(rows, values, uniq, scratch)
                # the touched rows' parameters and moments, one fused Adam kernel, written back
                w, m, v = (t.index_select(0, rows) for t in (table, m_all, v_all))
                _adam(group, state["step"], w, grad, m, v)
                for t, new in ((table, w), (m_all, m), (v_all, v)):
                    t.index_copy_(0, rows, new)
        return loss


def _adam(group: dict[str, Any], step: int, w: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> None:
    """One Adam step at global step ``step`` on ``w``, ``m``, ``v`` in place (torch's fused
    kernel: torch.optim.Adam's formula, one pass)."""
    b1, b2 = group["betas"]
    steps = [torch.tensor(float(step), device=w.device)]
    torch._fused_adam_(
        [w], [grad], [m], [v], [], steps, amsgrad=False, lr=group["lr"], beta1=b1, beta2=b2,
        weight_decay=0.0, eps=group["eps"], maximize=False, grad_scale=None, found_inf=None,
    )
