"""Per-tensor compression of a torch module's embedding tables and Linear layers.

:func:`encode` turns a trained fp32 module into the tensors a compressed folder stores (named
``<state key>.<suffix>``); :func:`restore` rebuilds the in-memory compressed module from them,
the same code for a fresh compression and for a folder read from disk.

In memory:

- int8 tables (and Linear weights the model reads directly) keep int8 values and one fp32 scale
  per row (torchao's symmetric per-row weight-only int8); fp16/bf16 tables keep half-precision
  values. Both sit behind a ``torch.nn.utils.parametrize`` parametrization whose forward
  dequantizes, so every model's scoring code — which reads ``module.user.weight``,
  ``weight[users]``, ``weight.T`` directly — runs unchanged. torchao's own ``Int8Tensor`` cannot
  be used for tables: it implements ``F.embedding`` but not the transpose (``aten.permute``)
  that full-catalogue scoring needs.
- int8 Linear layers (when the model only calls them) are torchao
  ``Int8DynamicActivationInt8WeightConfig`` layers holding exactly the stored int8 values.
- pruned tensors are dense fp32 with zeros; structured pruning stores only the kept embedding
  columns / Linear rows (and their index), so it shrinks the folder.
- the text models' cached item text vectors (``TextFeatureBank.memory``, one row per item)
  are stored like a table under int8 / fp16 / bf16, and kept exactly under pruning and ONNX:
  they are the language model's output, an input of the model rather than a learned weight.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from fusionrec.compress.spec import CompressionSpec
from fusionrec.errors import ModelStateError

__all__ = [
    "encode",
    "restore",
    "compressible_layers",
    "text_buffers",
    "prune_magnitude",
    "prune_structured",
    "int8_rows",
    "SUFFIXES",
]

#: suffix -> meaning, the only names a compressed tensor file may use beside plain state keys.
SUFFIXES = {
    "q8": "int8 values, one row per embedding row / Linear output (dequantized on access)",
    "q8dyn": "int8 values of a Linear run by torchao's dynamic int8 kernels",
    "scale": "fp32 per-row scales of q8 / q8dyn",
    "fp16": "float16 values (dequantized on access)",
    "bf16": "bfloat16 values (dequantized on access)",
    "kept": "the kept columns (tables) or rows (Linear) of a structured-pruned tensor",
    "keep_cols": "int64 index of the kept table columns (embedding dimensions)",
    "keep_rows": "int64 index of the kept Linear rows (output neurons)",
}
_TABLES = (nn.Embedding, nn.EmbeddingBag)


def compressible_layers(module: nn.Module) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """``(tables, linears)``: state key of the weight -> owning module, for every embedding table
    and every plain ``nn.Linear`` (subclasses such as attention's out-projection are left alone)."""
    tables: dict[str, nn.Module] = {}
    linears: dict[str, nn.Module] = {}
    for name, m in module.named_modules():
        key = f"{name}.weight" if name else "weight"
        if isinstance(m, _TABLES) and m.weight.is_floating_point():
            tables[key] = m
        elif type(m) is nn.Linear:
            linears[key] = m
    return tables, linears


def text_buffers(module: nn.Module) -> dict[str, nn.Module]:
    """State key -> owning bank, for every cached item-text matrix (``TextFeatureBank.memory``)."""
    from fusionrec.encoders.finetune import TextFeatureBank

    out: dict[str, nn.Module] = {}
    for name, m in module.named_modules():
        if isinstance(m, TextFeatureBank) and m.memory.is_floating_point() and m.memory.dim() == 2:
            out[f"{name}.memory" if name else "memory"] = m
    return out


def int8_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torchao's symmetric per-row int8 of a 2-D float tensor: ``(int8 values, fp32 scales (rows, 1))``."""
    from torchao.quantization import Int8Tensor, PerRow

    q = Int8Tensor.from_hp(w.detach().float().contiguous(), PerRow())
    return q.qdata.contiguous(), q.scale.reshape(-1, 1).float().contiguous()


def prune_magnitude(w: torch.Tensor, ratio: float) -> torch.Tensor:
    """A copy of ``w`` with exactly ``round(ratio * numel)`` entries zeroed, smallest |w| first
    (ties in index order, so the count is exact)."""
    flat = w.detach().float().flatten().clone()
    k = round(ratio * flat.numel())
    if k:
        order = torch.argsort(flat.abs(), stable=True)
        flat[order[:k]] = 0.0
    return flat.reshape(w.shape)


def prune_structured(w: torch.Tensor, ratio: float, dim: int) -> torch.Tensor:
    """Index (sorted, int64) of the slices along ``dim`` kept after dropping ``round(ratio * n)``
    of them with the smallest L2 norm (at least one is kept). ``dim=1``: table columns
    (embedding dimensions); ``dim=0``: Linear rows (output neurons)."""
    n = w.shape[dim]
    drop = min(round(ratio * n), n - 1)
    norms = w.detach().float().norm(dim=1 - dim)
    order = torch.argsort(norms, stable=True)
    return torch.sort(order[drop:]).values.to(torch.int64)


def encode(module: nn.Module, spec: CompressionSpec, linear_int8: str = "dynamic") -> dict[str, torch.Tensor]:
    """The tensors of ``module`` compressed by ``spec`` (``onnx`` stores the module as is).
    ``linear_int8``: ``dynamic`` (torchao kernels) or ``weight_only`` for int8 Linear weights."""
    tables, linears = compressible_layers(module)
    texts = text_buffers(module) if spec.kind in ("int8", "fp16", "bf16") else {}
    out: dict[str, torch.Tensor] = {}
    sd = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    zero_bias: dict[str, torch.Tensor] = {}
    for key, v in sd.items():
        is_table, is_linear = key in tables or key in texts, key in linears
        if not (is_table or is_linear) or spec.kind == "onnx" or (spec.kind == "int8" and v.shape[1] < 2):
            # int8 rows of one value gain nothing (and torchao's per-row quantizer refuses them)
            out[key] = v.contiguous()
            continue
        if spec.kind == "int8":
            q, s = int8_rows(v)
            out[f"{key}.{'q8dyn' if is_linear and linear_int8 == 'dynamic' else 'q8'}"] = q
            out[f"{key}.scale"] = s
        elif spec.kind in ("fp16", "bf16"):
            if is_table:
                out[f"{key}.{spec.kind}"] = v.to(torch.float16 if spec.kind == "fp16" else torch.bfloat16).contiguous()
            else:
                out[key] = v.contiguous()
        elif spec.kind == "prune":
            assert spec.ratio is not None
            out[key] = prune_magnitude(v, spec.ratio).contiguous()
        elif spec.kind == "prune-structured":
            assert spec.ratio is not None
            dim = 1 if is_table else 0
            keep = prune_structured(v, spec.ratio, dim)
            out[f"{key}.kept"] = v.index_select(dim, keep).float().contiguous()
            out[f"{key}.keep_{'cols' if is_table else 'rows'}"] = keep
            bias = key[: -len("weight")] + "bias"
            if is_linear and bias in sd:
                b = torch.zeros_like(sd[bias])
                b[keep] = sd[bias][keep]
                zero_bias[bias] = b
        else:  # pragma: no cover - parse_method admits no other kind
            raise ValueError(f"unknown compression kind {spec.kind!r}")
    out.update({k: b.contiguous() for k, b in zero_bias.items()})
    return out


class Int8Rows(nn.Module):
    """Parametrization: int8 values times per-row scales, dequantized on access."""

    def forward(self, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return q.to(scale.dtype) * scale

    def right_inverse(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # placeholders of the right shapes; restore() puts the stored tensors in their place
        return torch.zeros(w.shape, dtype=torch.int8), torch.ones(w.shape[0], 1, dtype=torch.float32)


class HalfTable(nn.Module):
    """Parametrization: a float16/bfloat16 table read as float32."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()

    def right_inverse(self, w: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.zeros(w.shape, dtype=self.dtype),)


def _groups(stored: dict[str, torch.Tensor]) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    by_key: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in stored.items():
        base, _, suffix = name.rpartition(".")
        if suffix in SUFFIXES:
            by_key.setdefault(base, {})[suffix] = t
        else:
            by_key.setdefault(name, {})[""] = t
    yield from by_key.items()


def _owner(module: nn.Module, key: str) -> tuple[nn.Module, str]:
    path, _, attr = key.rpartition(".")
    return (module.get_submodule(path) if path else module), attr


def restore(module: nn.Module, stored: dict[str, torch.Tensor], where: str = "the compressed state") -> None:
    """Make ``module`` (freshly built, fp32) the compressed module ``stored`` describes."""
    dense: dict[str, torch.Tensor] = {}
    params: list[tuple[str, str, dict[str, torch.Tensor]]] = []
    dynamic: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    expected = module.state_dict()
    for key, parts in _groups(stored):
        if key not in expected:
            raise ModelStateError(f"{where}: tensor {key!r} is not a parameter of the model")
        shape = tuple(expected[key].shape)
        if "" in parts and shape == () and tuple(parts[""].shape) == (1,):
            # a 0-d tensor (lm_lightgcn's cold_scale) comes back from the folder as 1-d
            # (np.ascontiguousarray in save), as torch's own load_state_dict accepts too
            parts[""] = parts[""].reshape(())
        if "" in parts:
            dense[key] = parts[""]
        elif "kept" in parts:
            kept = parts["kept"]
            dim, keep = (1, parts["keep_cols"]) if "keep_cols" in parts else (0, parts.get("keep_rows"))
            if keep is None:
                raise ModelStateError(f"{where}: {key}.kept lacks its keep_cols/keep_rows index")
            full = torch.zeros(shape, dtype=torch.float32)
            full.index_copy_(dim, keep.to(torch.int64), kept.float())
            dense[key] = full
        elif "q8dyn" in parts:
            q, s = parts["q8dyn"], parts["scale"]
            dense[key] = q.float() * s
            dynamic[key] = (q, s)
        elif "q8" in parts and "scale" in parts:
            params.append((key, "q8", parts))
        elif "fp16" in parts or "bf16" in parts:
            params.append((key, "fp16" if "fp16" in parts else "bf16", parts))
        else:
            raise ModelStateError(f"{where}: tensor {key!r} has an incomplete encoding ({', '.join(sorted(parts))})")
        for suffix, t in parts.items():
            if suffix in ("", "q8", "q8dyn", "fp16", "bf16") and tuple(t.shape) != shape:
                raise ModelStateError(f"{where}: tensor {key!r} has shape {tuple(t.shape)}, the model needs {shape}")
    missing = set(expected) - set(dense) - {k for k, _, _ in params}
    if missing:
        raise ModelStateError(f"{where}: lacks the model tensors {', '.join(sorted(missing)[:5])}")
    for key, t in list(dense.items()):
        if t.dtype != expected[key].dtype:
            dense[key] = t.to(expected[key].dtype)
    # assign: the module adopts the stored tensors (no second copy of the weights in memory)
    module.load_state_dict(dense, strict=False, assign=True)
    for key, kind, parts in params:
        owner, attr = _owner(module, key)
        getattr(owner, attr).requires_grad_(False)
        if kind == "q8":
            q, scale = parts["q8"], parts["scale"].reshape(-1, 1)
            if q.dtype != torch.int8 or scale.dtype != torch.float32 or scale.shape[0] != q.shape[0]:
                raise ModelStateError(f"{where}: {key}.q8 must be int8 with one float32 scale per row")
            parametrize.register_parametrization(owner, attr, Int8Rows(), unsafe=True)
            plist = owner.parametrizations[attr]
            plist.original0 = nn.Parameter(q, requires_grad=False)
            plist.original1 = nn.Parameter(scale, requires_grad=False)
        else:
            dtype = torch.float16 if kind == "fp16" else torch.bfloat16
            if parts[kind].dtype != dtype:
                raise ModelStateError(f"{where}: {key}.{kind} holds {parts[kind].dtype}, expected {dtype}")
            parametrize.register_parametrization(owner, attr, HalfTable(dtype), unsafe=True)
            owner.parametrizations[attr].original0 = nn.Parameter(parts[kind], requires_grad=False)
    if dynamic:
        _torchao_dynamic(module, dynamic)
    module.train(False)
    for p in module.parameters():
        p.requires_grad_(False)


def _torchao_dynamic(module: nn.Module, layers: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Swap the given Linear weights for torchao dynamic-int8 tensors holding the stored values
    (quantizing the dequantized weights again could move a value by one step, so the stored
    int8 values and scales are copied in)."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    fqns = {k[: -len(".weight")] for k in layers}
    quantize_(module, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda m, fqn: fqn in fqns)
    with torch.no_grad():
        for key, (q, s) in layers.items():
            owner, attr = _owner(module, key)
            w = getattr(owner, attr)
            if not hasattr(w, "qdata"):
                raise ModelStateError(f"torchao did not quantize Linear {key!r}")
            if w.qdata.shape != q.shape or w.qdata.dtype != q.dtype:
                raise ModelStateError(f"Linear {key!r}: stored int8 values of shape {tuple(q.shape)}, torchao made {tuple(w.qdata.shape)}")
            w.qdata.copy_(q)
            w.scale.copy_(s.reshape(w.scale.shape))
