"""EASE (Steck 2019): closed-form item-item linear autoencoder with a zero diagonal.

The dense n_items² algebra runs through torch (``fusionrec.nn.linalg``: MKL on CPU, CUDA on a
GPU), float32 by default, after a memory check against what the machine has; the peak is two
n_items² matrices (about 5 GB in float32 at 25k items). Beyond that see ``ease_large``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.registry import register
from fusionrec.nn.linalg import (
    GRAM_BLOCK_BYTES,
    DenseDtype,
    require_memory,
    resolve_device,
    sparse_gram,
    spd_inverse,
    torch_dtype,
)

__all__ = ["EASE", "EASEConfig", "ease_closed_form", "ease_memory", "ease_weights"]


class EASEConfig(ModelConfig):
    reg_weight: float = Field(250.0, gt=0)
    """L2 regularisation λ added to the Gram matrix diagonal."""
    max_items: int = Field(60_000, ge=1)
    """Refuse to fit above this many items (the dense n_items² solve would not fit in memory)."""
    dtype: Literal["float32", "float64"] = "float32"
    """Precision of the dense solve (float64 needs twice the memory; B is stored as float32)."""


def ease_memory(n_items: int, dtype: DenseDtype = "float32") -> int:
    """Bytes EASE's dense solve holds at its peak: the Gram matrix and Cholesky's working copy
    (two n_items² matrices of ``dtype``; the float32 B made from a float64 solve fits in the
    second) plus one block of the sparse Gram product."""
    width = torch_dtype(dtype).itemsize
    return 2 * n_items * n_items * width + min(GRAM_BLOCK_BYTES, 28 * n_items * n_items)


def ease_closed_form(
    dataset: Dataset,
    reg_weight: float,
    *,
    model: str = "EASE",
    max_items: int = 60_000,
    dtype: DenseDtype = "float32",
    device: str = "auto",
    side: np.ndarray | None = None,
    side_weight: float = 0.0,
) -> np.ndarray:
    """EASE's B (float32, n_items x n_items) for the training interactions of ``dataset``:
    B = I - P·diag(1/diag(P)) with P = (XᵀX + side_weight·S·Sᵀ + λI)⁻¹ and a zero diagonal.

    ``side`` (n_items x d, optional) adds a low-rank term to the Gram matrix (lm_ease's text).
    The dense algebra runs in torch (MKL on CPU, CUDA when ``device`` resolves to a GPU) in
    ``dtype``; the memory it needs is checked first (InsufficientMemoryError names need vs have).
    """
    n = dataset.n_items
    if n > max_items:
        raise ConfigError(
            f"{model} needs a dense {n}x{n} matrix, above max_items={max_items}; raise max_items "
            "if you have the memory, or use ease_large"
        )
    dev = resolve_device(device)
    need = ease_memory(n, dtype)
    hint = "use dtype='float32'" if dtype == "float64" else "use ease_large for this catalogue"
    require_memory(need, f"{model} on {n:,} items ({dtype})", dev, hint=hint)
    if dev.type == "cuda":  # B comes back to host memory
        require_memory(4 * n * n, f"{model}'s {n:,}² float32 weights", "cpu", hint=hint)
    tdt = torch_dtype(dtype)
    g = sparse_gram(dataset.matrix("csr"), tdt, dev)
    if side is not None and side_weight > 0:
        s = torch.as_tensor(np.asarray(side), dtype=tdt, device=dev)
        g.addmm_(s, s.T, alpha=float(side_weight))
        del s
    g.diagonal().add_(float(reg_weight))
    p = spd_inverse(g, f"{model}'s Gram matrix + λI")
    del g
    return _zero_diag_ratio(p)


def _zero_diag_ratio(p: torch.Tensor) -> np.ndarray:
    """B = -P / diag(P) (column j divided by P_jj), zero diagonal, as float32 numpy (in place)."""
    d = p.diagonal().clone()
    p.div_(d.neg().unsqueeze(0))
    p.fill_diagonal_(0.0)
    if p.dtype != torch.float32:
        p = p.to(torch.float32)
    return p.cpu().numpy()


def ease_weights(gram: np.ndarray, reg_weight: float, dtype: DenseDtype = "float64") -> np.ndarray:
    """EASE's closed form on a given dense Gram matrix (numpy, not changed), through torch:
    B = I - P·diag(1/diag(P)), P = (G + λI)⁻¹, zero diagonal (float32)."""
    g = torch.tensor(np.asarray(gram), dtype=torch_dtype(dtype))
    g.diagonal().add_(float(reg_weight))
    return _zero_diag_ratio(spd_inverse(g, "Gram matrix + λI"))


@register("ease")
class EASE(Recommender):
    """EASE: B = I - P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹; score = x_u·B."""

    Config = EASEConfig
    capabilities = Capabilities(cold_start_users=True)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        c = self.config
        self.B_ = ease_closed_form(
            dataset,
            c.reg_weight,
            max_items=c.max_items,
            dtype=c.dtype,
            device=self.fit_options_.device,
        )

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        x = self.seen_[np.asarray(user_idx, dtype=np.int64)]
        b = self.B_ if item_idx is None else self.B_[:, np.asarray(item_idx)]
        return np.asarray(x @ b, dtype=np.float32)

    def score_histories(self, histories) -> np.ndarray:
        x = _history_matrix(histories, self.B_.shape[0])
        return np.asarray(x @ self.B_, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.B_.T

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.B_ = state["B"]


def _history_matrix(histories, n_items: int) -> sp.csr_matrix:
    rows = (
        np.concatenate([np.full(len(h), r) for r, h in enumerate(histories)])
        if histories
        else np.zeros(0, int)
    )
    cols = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if histories
        else np.zeros(0, int)
    )
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), n_items)
    )
    m.data[:] = 1.0
    return m
