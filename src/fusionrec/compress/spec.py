"""Compression method specs: ``int8``, ``fp16``, ``bf16``, ``prune:RATIO``,
``prune-structured:RATIO`` and ``onnx`` (as ``fusionrec compress --method`` takes them)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fusionrec.errors import ConfigError

__all__ = ["CompressionSpec", "parse_method", "METHODS"]

Kind = Literal["int8", "fp16", "bf16", "prune", "prune-structured", "onnx"]

#: method -> what it does (the CLI help and the error for an unknown method list these).
METHODS: dict[str, str] = {
    "int8": "int8 embedding tables (weight-only, per row) and dynamic int8 MLP Linear layers (torchao)",
    "fp16": "float16 embedding tables",
    "bf16": "bfloat16 embedding tables",
    "prune:RATIO": "zero exactly RATIO of each table's and Linear weight's entries, smallest magnitude first",
    "prune-structured:RATIO": "zero whole embedding dimensions / Linear output neurons by L2 norm",
    "onnx": "export the scoring module to ONNX; onnxruntime scores when the folder is loaded",
}
_RATIO_KINDS = ("prune", "prune-structured")
_PLAIN_KINDS = ("int8", "fp16", "bf16", "onnx")


@dataclass(frozen=True)
class CompressionSpec:
    """One parsed method: its kind and, for pruning, the ratio in (0, 1)."""

    kind: Kind
    ratio: float | None = None

    def __str__(self) -> str:
        return self.kind if self.ratio is None else f"{self.kind}:{self.ratio:g}"


def parse_method(text: str) -> CompressionSpec:
    """``"prune:0.5"`` -> ``CompressionSpec("prune", 0.5)``; a clear ConfigError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"compression method must be a non-empty string; one of {', '.join(METHODS)}")
    raw = text.strip().lower()
    kind, sep, arg = raw.partition(":")
    if kind in _PLAIN_KINDS:
        if sep:
            raise ConfigError(f"compression method {kind!r} takes no ratio, got {text!r}")
        return CompressionSpec(kind)  # type: ignore[arg-type]
    if kind in _RATIO_KINDS:
        if not sep or not arg:
            raise ConfigError(f"compression method {kind!r} needs a ratio: {kind}:RATIO with RATIO in (0, 1), e.g. {kind}:0.5")
        try:
            ratio = float(arg)
        except ValueError:
            raise ConfigError(f"{text!r}: the pruning ratio {arg!r} is not a number") from None
        if not math.isfinite(ratio) or not 0.0 < ratio < 1.0:
            raise ConfigError(f"{text!r}: the pruning ratio must lie strictly between 0 and 1, got {arg}")
        return CompressionSpec(kind, ratio)  # type: ignore[arg-type]
    raise ConfigError(f"unknown compression method {text!r}; one of {', '.join(METHODS)}")
