"""User-item graph helpers: the symmetric normalised bipartite adjacency as a torch sparse
tensor, and LightGCN-style propagation. Never builds a dense (n_users+n_items)² matrix."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["normalized_adjacency", "propagate", "to_torch_sparse", "symmetric_spmm"]


def normalized_adjacency(interactions: sp.spmatrix, self_loops: bool = False) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``A = [[0, R], [Rᵀ, 0]]`` (users first, then
    items), R binary; isolated nodes get zero rows. ``self_loops`` adds I to A first."""
    r = sp.csr_matrix(interactions, dtype=np.float32, copy=True)
    r.data[:] = 1.0
    n_u, n_i = r.shape
    a = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    if a.shape != (n_u + n_i, n_u + n_i):  # bmat drops empty blocks' sizes when R has no rows
        a = sp.csr_matrix(a, shape=(n_u + n_i, n_u + n_i))
    if self_loops:
        a = a + sp.eye(n_u + n_i, dtype=np.float32, format="csr")
    deg = np.asarray(a.sum(1)).ravel()
    inv = np.zeros_like(deg)
    nz = deg > 0
    inv[nz] = deg[nz] ** -0.5
    d = sp.diags(inv.astype(np.float32))
    out = (d @ a @ d).tocsr().astype(np.float32)
    out.sort_indices()
    return out


def to_torch_sparse(m: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy matrix as a torch sparse CSR tensor (float32)."""
    csr = sp.csr_matrix(m)
    csr.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data.astype(np.float32)),
            size=csr.shape,
            device=device,
            check_invariants=False,
        )


class _SymmetricSpMM(torch.autograd.Function):
    # torch's own sparse.mm backward transposes the sparse matrix on every call, which on CPU
    # is 10-30x slower than the product itself; for a symmetric A the gradient is just A @ g.
    @staticmethod
    def forward(ctx, adj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        with torch.autocast(h.device.type, enabled=False):  # sparse kernels are float32-only on CPU
            return adj @ h.float()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        with torch.autocast(grad.device.type, enabled=False):
            return None, ctx.adj @ grad.float().contiguous()


def symmetric_spmm(adj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``adj @ h`` for a *symmetric* sparse ``adj`` (not differentiated), with a cheap backward."""
    return _SymmetricSpMM.apply(adj, h.float().contiguous())


def propagate(adj: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Layer-mean readout ``(x + Âx + Â²x + ... + Â^L x) / (L + 1)``; ``adj`` must be the
    symmetric sparse matrix from ``normalized_adjacency``."""
    acc = x
    h = x
    for _ in range(n_layers):
        h = symmetric_spmm(adj, h)
        acc = acc + h
    return acc / (n_layers + 1)
