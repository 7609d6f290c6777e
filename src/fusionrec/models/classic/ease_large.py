"""``ease_large``: EASE for catalogues beyond the dense limit (diagonal + low-rank Gram matrix).

Dense EASE inverts the n x n matrix G + λI (G = XᵀX): two n² matrices, about 28 GB in float32
at 59k items, and n³ work. This variant approximates the Gram matrix by its exact diagonal plus
its top-``rank`` eigenpairs,

    G + λI  ≈  D + A·Aᵀ,     A = V·Λ^½ (n x r, top eigenvectors of G from a randomized SVD of X),
                             D = diag(G - A·Aᵀ) + λ  (what the rank-r part misses of each item),

and inverts that exactly by the Woodbury identity: P = D⁻¹ - U·M·Uᵀ with U = D⁻¹A and
M = (I + AᵀU)⁻¹ (r x r). EASE's weights B_ij = -P_ij / P_jj (i ≠ j, zero diagonal) are never
formed; a user's scores are

    s_uj = ((x_u·U)·M·U_jᵀ - x_uj·c_j) / P_jj,      c_j = (U·M·Uᵀ)_jj,

so memory is O(n·r) and scoring O(r·n) per user. With ``rank`` >= the number of items (and of
users) the approximation is exact and the model equals dense EASE (tested). The eigenvectors come
from a randomized range finder (Halko, Martinsson & Tropp 2011) with ``power_iters`` power
iterations: sparse products by scipy, dense QR/SVD by torch (MKL / CUDA), float32 by default.

The randomized SVD is written here (not ``torch.svd_lowrank``) to keep X as a scipy matrix
(torch's sparse CPU products were slower here) and to draw the test matrix from the fit seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.registry import register
from fusionrec.nn.linalg import (
    DenseDtype,
    require_memory,
    resolve_device,
    spd_inverse,
    torch_dtype,
)

__all__ = ["EASELarge", "EASELargeConfig", "low_rank_gram", "ease_large_memory"]


class EASELargeConfig(ModelConfig):
    """ease_large settings (reg_weight as dense EASE's)."""

    reg_weight: float = Field(250.0, gt=0)
    """L2 regularisation λ added to the Gram matrix diagonal (as in EASE)."""
    rank: int = Field(512, ge=1)
    """Eigenpairs of the Gram matrix kept (capped by the numbers of users and items);
    larger is closer to dense EASE and costs O(n_items·rank) memory."""
    oversample: int = Field(16, ge=0)
    """Extra random directions of the randomized SVD (accuracy of the top ``rank``)."""
    power_iters: int = Field(2, ge=0)
    """Power iterations of the randomized SVD (accuracy on slowly decaying spectra)."""
    dtype: Literal["float32", "float64"] = "float32"
    """Precision of the dense factorisations (the stored factors are float32)."""


def ease_large_memory(
    n_users: int, n_items: int, rank: int, oversample: int, dtype: DenseDtype = "float32"
) -> int:
    """Bytes the fit holds at its peak: the users x l range basis and four items x l blocks
    (l = rank + oversample), in ``dtype``."""
    width = torch_dtype(dtype).itemsize
    cols = min(rank + oversample, n_users, n_items)
    return (2 * n_users + 5 * n_items) * cols * width


def _orth(y: torch.Tensor) -> torch.Tensor:
    return torch.linalg.qr(y, mode="reduced").Q


def low_rank_gram(
    x: sp.csr_matrix,
    rank: int,
    oversample: int = 16,
    power_iters: int = 2,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``rank`` eigenpairs (V: n_items x r, λ: r, descending) of XᵀX by a randomized SVD
    of the user x item matrix ``x`` (exact when rank + oversample >= min(x.shape))."""
    m, n = x.shape
    dev = resolve_device(device)
    np_dt = np.float64 if dtype == torch.float64 else np.float32
    x = sp.csr_matrix(x, dtype=np_dt)
    xt = x.T.tocsr()
    cols = min(rank + oversample, m, n)

    def mul(a: sp.csr_matrix, b: torch.Tensor) -> torch.Tensor:  # sparse (scipy) x dense (torch)
        return torch.from_numpy(np.asarray(a @ b.cpu().numpy())).to(device=dev, dtype=dtype)

    gen = torch.Generator().manual_seed(int(seed))
    omega = torch.randn(n, cols, generator=gen, dtype=dtype).to(dev)
    q = _orth(mul(x, omega))  # m x l
    del omega
    for _ in range(power_iters):
        z = _orth(mul(xt, q))  # n x l
        q = _orth(mul(x, z))
        del z
    bt = mul(xt, q)  # Xᵀ·Q, n x l: X ≈ Q·Btᵀ
    del q
    u, s, _vh = torch.linalg.svd(bt, full_matrices=False)  # right singular vectors of X
    r = min(rank, cols)
    return u[:, :r].contiguous(), (s[:r] ** 2)


@register("ease_large")
class EASELarge(Recommender):
    """EASE with a diagonal + low-rank Gram matrix: O(n_items·rank) memory (for 50k+ items)."""

    Config = EASELargeConfig
    capabilities = Capabilities(cold_start_users=True)
    config: EASELargeConfig

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        c = self.config
        x = dataset.matrix("csr")
        dev = resolve_device(self.fit_options_.device)
        need = ease_large_memory(x.shape[0], x.shape[1], c.rank, c.oversample, c.dtype)
        require_memory(
            need,
            f"ease_large on {x.shape[1]:,} items, rank {c.rank} ({c.dtype})",
            dev,
            hint="lower rank",
        )
        tdt = torch_dtype(c.dtype)
        v, lam = low_rank_gram(x, c.rank, c.oversample, c.power_iters, seed, tdt, dev)
        a = v * lam.clamp_min(0).sqrt()  # n x r, A·Aᵀ = rank-r part of G
        del v
        pop = np.asarray(x.multiply(x).sum(0), dtype=np.float64).ravel()  # diag(XᵀX)
        diag_g = torch.as_tensor(pop, dtype=tdt, device=dev)
        d = (diag_g - (a * a).sum(1)).clamp_min(0) + c.reg_weight
        u = a / d[:, None]
        core = a.T @ u
        core.diagonal().add_(1.0)
        m = spd_inverse(core, "ease_large's r x r Woodbury core")
        self._set_factors(u, m, d)

    def _set_factors(self, u: torch.Tensor, m: torch.Tensor, d: torch.Tensor) -> None:
        """Keep U, M, D (float32 numpy) and the derived R = U·M, c = diag(U·M·Uᵀ), P_jj."""
        # derived from the float32 factors that are saved, so a loaded model scores identically
        self.U_, self.M_, self.D_ = (t.detach().to("cpu", torch.float32).numpy() for t in (u, m, d))
        u, m, d = (torch.from_numpy(a).double() for a in (self.U_, self.M_, self.D_))
        r = u @ m
        c = (r * u).sum(1)
        self._R = r.float()
        self._U = u.float()
        self._c = c.float()
        self._p = (1.0 / d - c).float()  # diag(P) > 0 (P is positive definite)

    def _scores(self, x: sp.csr_matrix, item_idx: np.ndarray | None) -> np.ndarray:
        x = sp.csr_matrix(x, dtype=np.float32)
        xr = torch.from_numpy(np.asarray(x @ self._R.numpy()))  # b x r
        if item_idx is None:
            u, c, p, xi = self._U, self._c, self._p, x
        else:
            idx = torch.as_tensor(np.asarray(item_idx, dtype=np.int64))
            u, c, p = self._U[idx], self._c[idx], self._p[idx]
            xi = x[:, np.asarray(item_idx, dtype=np.int64)]
        s = xr @ u.T  # torch (MKL): never numpy's BLAS for the dense product
        s -= torch.from_numpy(np.asarray(xi.toarray(), dtype=np.float32)) * c
        s /= p
        return s.numpy()

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        return self._scores(self.seen_[np.asarray(user_idx, dtype=np.int64)], item_idx)

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        rows = [np.asarray(h, dtype=np.int64) for h in histories]
        r = np.concatenate([np.full(len(h), k) for k, h in enumerate(rows)]) if rows else []
        cidx = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        x = sp.csr_matrix(
            (np.ones(len(cidx), np.float32), (np.asarray(r, dtype=np.int64), cidx)),
            shape=(len(rows), self.U_.shape[0]),
        )
        x.data[:] = 1.0
        return self._scores(x, None)

    def item_vectors(self) -> np.ndarray:
        """U = D⁻¹·A (n_items x rank): the items' coordinates in the low-rank part."""
        return self.U_

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"U": self.U_, "M": self.M_, "D": self.D_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._set_factors(
            torch.from_numpy(np.asarray(state["U"])),
            torch.from_numpy(np.asarray(state["M"])),
            torch.from_numpy(np.asarray(state["D"])),
        )
