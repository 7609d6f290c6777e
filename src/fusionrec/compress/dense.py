"""Half-precision storage of the closed-form EASE family's dense item-item matrix.

EASE, ``lm_ease`` and ``kg_ease`` keep one dense ``B`` (n_items x n_items, float32) and score a
user as ``x_u · B``. Compressed with ``fp16`` or ``bf16``, ``B`` is stored and held in half
precision (the folder and the resident matrix halve) and a batch of users is scored from the
rows of ``B`` their histories touch, converted to float32 for that product only: never the
whole matrix in float32 at once (at 25k items that would be 2.5 GB per call). Every other
state array (``cold_weight``, ``kg_ease``'s chosen weights) is kept exactly.

int8 and pruning are refused for these models: ``B`` is a regression solution with a zero
diagonal whose entries are all small and of both signs, not an embedding table or an MLP,
and the torch-side methods (torchao int8 tables, Linear pruning, ONNX) have nothing to act on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from fusionrec.compress.spec import CompressionSpec
from fusionrec.errors import ConfigError, ModelStateError

__all__ = ["is_dense_ease", "check_dense_method", "encode_dense", "decode_dense", "half_scores", "history_rows", "DENSE_KEY"]

#: the state array of the EASE family that is stored in half precision
DENSE_KEY = "B"
_HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def is_dense_ease(cls: type) -> bool:
    """True for EASE and the subclasses that score exactly as EASE does (``x_u · B``)."""
    from fusionrec.models.classic.ease import EASE

    if not (isinstance(cls, type) and issubclass(cls, EASE)):
        return False
    return all(getattr(cls, m) is getattr(EASE, m) for m in ("score_indices", "score_histories", "item_vectors"))


def check_dense_method(name: str, spec: CompressionSpec) -> None:
    """A ConfigError naming why ``spec`` does not apply to the dense model ``name``."""
    if spec.kind not in _HALF:
        raise ConfigError(
            f"model {name!r} is a closed-form model whose weights are one dense item-item matrix B: "
            f"it compresses with fp16 or bf16 (B stored and held in half precision); {spec} applies to "
            "torch models' embedding tables and MLPs"
        )


def encode_dense(state: dict[str, np.ndarray], spec: CompressionSpec) -> dict[str, torch.Tensor]:
    """The model's state arrays with ``B`` as ``B.fp16`` / ``B.bf16``; the others unchanged."""
    if DENSE_KEY not in state:
        raise ModelStateError(f"the model's state has no dense matrix {DENSE_KEY!r} to compress")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        t = torch.from_numpy(np.ascontiguousarray(value))
        if key == DENSE_KEY:
            out[f"{key}.{spec.kind}"] = t.to(_HALF[spec.kind]).contiguous()
        else:
            out[key] = t
    return out


def decode_dense(stored: dict[str, torch.Tensor], where: str) -> dict[str, object]:
    """The state the base model's ``_set_state`` takes: ``B`` as the half-precision tensor
    (held as is; :func:`half_scores` scores from it), the other arrays as numpy."""
    halves = [k for k in stored if k.startswith(f"{DENSE_KEY}.")]
    if len(halves) != 1 or halves[0].partition(".")[2] not in _HALF:
        raise ModelStateError(f"{where}: needs exactly one of {DENSE_KEY}.fp16 / {DENSE_KEY}.bf16, found {sorted(stored)}")
    key = halves[0]
    b = stored[key]
    want = _HALF[key.partition(".")[2]]
    if b.dtype != want or b.dim() != 2 or b.shape[0] != b.shape[1]:
        raise ModelStateError(f"{where}: {key} must be a square {want} matrix, got {tuple(b.shape)} {b.dtype}")
    state: dict[str, object] = {k: v.numpy() for k, v in stored.items() if k != key}
    state[DENSE_KEY] = b
    return state


def half_scores(x: sp.csr_matrix, b: torch.Tensor, item_idx: np.ndarray | None = None) -> np.ndarray:
    """``x @ B`` (float32, ``(x.shape[0], n_items or len(item_idx))``) for a half-precision B,
    converting to float32 only the rows of B that ``x`` touches (and only the asked columns)."""
    x = sp.csr_matrix(x)
    rows = np.unique(x.indices)
    n_out = b.shape[1] if item_idx is None else len(item_idx)
    if len(rows) == 0:
        return np.zeros((x.shape[0], n_out), np.float32)
    sub = b[torch.from_numpy(rows.astype(np.int64))]
    if item_idx is not None:
        sub = sub[:, torch.from_numpy(np.asarray(item_idx, dtype=np.int64))]
    dense = sub.float().numpy()
    compact = sp.csr_matrix((x.data.astype(np.float32), np.searchsorted(rows, x.indices), x.indptr), shape=(x.shape[0], len(rows)))
    return np.asarray(compact @ dense, dtype=np.float32)


def history_rows(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """A 0/1 (len(histories), n_items) matrix of ad-hoc users' item-index histories."""
    lengths = [len(h) for h in histories]
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if sum(lengths) else np.zeros(0, np.int64)
    if len(cols) and (cols.min() < 0 or cols.max() >= n_items):
        raise ValueError(f"history item indices must lie in [0, {n_items})")
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    m = sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(len(histories), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
