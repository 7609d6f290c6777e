"""Shared top-k machinery: masking already-seen items and picking the best k, batch-first."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["mask_seen", "topk"]


def mask_seen(scores: np.ndarray, rows: np.ndarray, *matrices: sp.csr_matrix | None) -> np.ndarray:
    """Set ``scores[b, i] = -inf`` where user ``rows[b]`` has item i in any of ``matrices`` (in place)."""
    for m in matrices:
        if m is None or m.nnz == 0:
            continue
        sub = m[rows]
        r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
        c = sub.indices
        if scores.ndim == 2 and scores.shape[1] < m.shape[1]:
            raise ValueError("mask_seen needs full item scores")
        scores[r, c] = -np.inf
    return scores


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest scores per row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    t = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
    vals, idx = torch.topk(t, k, dim=1, largest=True, sorted=True)
    # torch.topk orders ties arbitrarily: re-order the selection by (value desc, index asc) ...
    idx, perm = torch.sort(idx, dim=1)
    vals, order = torch.sort(torch.gather(vals, 1, perm), dim=1, descending=True, stable=True)
    idx = torch.gather(idx, 1, order)
    # ... and where a tie straddles the cut-off, take the rows' lowest-index tied items (full stable sort).
    if k:
        cut = vals[:, -1:]
        straddle = ((t == cut).sum(1) > (vals == cut).sum(1)).nonzero().ravel()
        if len(straddle):
            sv, si = torch.sort(t[straddle], dim=1, descending=True, stable=True)
            vals[straddle], idx[straddle] = sv[:, :k], si[:, :k]
    return idx.numpy().astype(np.int64), vals.numpy()
