"""Plain SGD that updates only the embedding rows a batch touched.

An embedding table trained with a dense optimiser pays for the whole table at every step: the
gradient is a table of zeros with a few rows filled in, and the step reads and writes every
row. With 162k users x 59k items x 64 dimensions that is 56 MB per step for a batch that
touched 12k rows. A module whose loss returns *sparse* row gradients (a ``torch.sparse_coo``
tensor with one sparse dimension, duplicate rows allowed and left uncoalesced) lets
:class:`RowSGD` add ``-lr x`` each gradient row into its table row with ``scatter_add_``: the
same step as ``torch.optim.SGD`` (no momentum, no weight decay: rows outside the batch have a
zero gradient and do not move), at a cost that grows with the batch, not the table.

Written here rather than taken from torch because ``torch.optim.SGD`` applies a sparse gradient
through ``add_`` (``index_add_`` inside), measured 4x slower per row on this CPU than
``scatter_add_``, and its fused implementation refuses sparse gradients.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from fusionrec.errors import ConfigError

__all__ = ["RowSGD", "add_rows", "row_grad"]


def add_rows(table: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``table[rows[j]] += values[j]`` for every j, duplicates summed (in place; returns table)."""
    return table.scatter_add_(0, rows.unsqueeze(1).expand(-1, values.shape[1]), values)


def row_grad(shape: torch.Size, rows: torch.Tensor, values: torch.Tensor, sparse: bool) -> torch.Tensor:
    """The gradient of a (n_rows, d) table whose row ``rows[j]`` receives ``values[j]``:
    an uncoalesced sparse COO tensor (``sparse``) or a dense table of zeros with the rows added."""
    if sparse:
        return torch.sparse_coo_tensor(
            rows.unsqueeze(0), values, shape, check_invariants=False, is_coalesced=False
        )
    return add_rows(values.new_zeros(shape), rows, values)


class RowSGD(torch.optim.Optimizer):
    """SGD without momentum or weight decay: ``p -= lr * grad``, sparse row gradients applied
    to their rows only (dense gradients as usual).

    Args:
        params: parameters or parameter groups (each group may set its own ``lr``).
        lr: learning rate (> 0).
    """

    def __init__(self, params: Iterable[Any], lr: float) -> None:
        if not lr > 0:
            raise ConfigError(f"RowSGD lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> torch.Tensor | None:  # noqa: D102 - torch's contract
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    if g.sparse_dim() != 1 or g.dense_dim() != p.dim() - 1:
                        raise ValueError(
                            f"RowSGD takes row gradients (one sparse dimension), got sparse_dim {g.sparse_dim()}"
                        )
                    add_rows(p.view(p.shape[0], -1), g._indices()[0], g._values().reshape(g._nnz(), -1).mul(-lr))
                else:
                    p.add_(g, alpha=-lr)
        return loss
