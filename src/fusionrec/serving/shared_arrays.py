"""Serve a loaded model from memory-mapped arrays, so that worker processes share one copy.

``load_model`` reads ``state.safetensors`` into private memory: with ``fusionrec serve
--workers N`` every worker would hold its own copy of the embedding tables. After the load the
service calls :func:`map_model_arrays`, which maps the same file copy-on-write (``np.memmap``
mode ``"c"``: pages stay in the page cache, shared by every process mapping the file, until a
process writes one, which then gets a private copy; the file itself is never written) and puts
the mapped arrays in place of the private ones:

- torch models: every CPU float32 parameter or buffer whose saved tensor is equal gets the
  mapped array as its storage (``tensor.data = torch.from_numpy(mapped)``);
- numpy models: ``_set_state`` is called again with the mapped arrays (the models keep them
  as they are: EASE's B, StaticEmbedding's U and V, ...);
- the training interactions' csr indices (``seen_``), used to mask seen items.

The private copies are then freed. What stays private per worker: arrays a model derives at
load or at scoring time (LightGCN's propagated embeddings, CKE's fused item cache, the
service's item norms), the id maps' hash tables, the HNSW graph links, and the caches.

safetensors' own ``safe_open`` copies each tensor it returns, so the file is mapped here from
its header (the format is a little-endian u64 header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw bytes); ``load_model`` has already checked
that header (``models/folder.check_model_folder``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fusionrec.models.base import Recommender
from fusionrec.models.folder import STATE_FILE, loading

__all__ = ["MappedArrays", "map_model_arrays", "read_safetensors_mapped"]

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


@dataclass(frozen=True)
class MappedArrays:
    """What :func:`map_model_arrays` put in place: how many arrays and bytes are now mapped."""

    arrays: int
    bytes: int
    names: tuple[str, ...]


def read_safetensors_mapped(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a copy-on-write memory map (no bytes are read
    until used). Tensors of a dtype numpy lacks (bf16) or not aligned to their item size are
    left out (the caller keeps its private copy of those)."""
    path = Path(path)
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    start = 8 + n
    whole = np.memmap(path, dtype=np.uint8, mode="c")
    out: dict[str, np.ndarray] = {}
    for name, t in header.items():
        if name == "__metadata__" or t.get("dtype") not in _DTYPES:
            continue
        dtype = np.dtype(_DTYPES[t["dtype"]])
        lo, hi = (int(x) for x in t["data_offsets"])
        shape = tuple(int(x) for x in t["shape"])
        if hi <= lo or (start + lo) % dtype.itemsize:
            continue
        out[name] = whole[start + lo : start + hi].view(dtype).reshape(shape)
    return out


def map_model_arrays(model: Recommender, folder: str | Path) -> MappedArrays:
    """Replace the private arrays of ``model`` (loaded from ``folder``) by copy-on-write maps
    of ``folder/state.safetensors`` where they are equal; returns what was mapped."""
    mapped = read_safetensors_mapped(Path(folder) / STATE_FILE)
    names: list[str] = []
    nbytes = 0
    module = getattr(model, "module_", None)
    if module is not None:
        import torch

        with torch.no_grad():
            tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
            for name, t in tensors.items():
                arr = mapped.get(f"module.{name}")
                if (
                    arr is None
                    or t.device.type != "cpu"
                    or t.dtype != torch.float32
                    or arr.dtype != np.float32
                    or tuple(arr.shape) != tuple(t.shape)
                    or t.is_sparse
                ):
                    continue
                shared = torch.from_numpy(arr)
                if not torch.equal(t, shared):  # the module changed it after loading: keep it
                    continue
                t.data = shared
                names.append(f"module.{name}")
                nbytes += arr.nbytes
    else:
        state = {k: v for k, v in mapped.items() if not k.startswith("_")}
        with loading(folder):
            model._set_state(state)
        for k, v in state.items():
            names.append(k)
            nbytes += v.nbytes
    seen = model.seen_
    ind, ptr = mapped.get("_seen_indices"), mapped.get("_seen_indptr")
    if (
        ind is not None
        and ptr is not None
        and ind.dtype == ptr.dtype
        and ind.dtype.kind == "i"
        and np.array_equal(ind, seen.indices)
        and np.array_equal(ptr, seen.indptr)
    ):
        m = sp.csr_matrix(seen.shape, dtype=seen.dtype)
        # the file's int64 indices (the loaded copy is downcast to int32): shared, not per worker
        m.data, m.indices, m.indptr = seen.data, ind, ptr  # no constructor copy or re-check
        model.seen_ = m
        names += ["_seen_indices", "_seen_indptr"]
        nbytes += ind.nbytes + ptr.nbytes
    return MappedArrays(len(names), int(nbytes), tuple(names))
