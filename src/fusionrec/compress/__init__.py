"""Post-training compression of trained torch models: int8 (torchao), fp16/bf16 tables,
magnitude and structured pruning, and ONNX export scored by onnxruntime.

``compress_folder(model_dir, "int8", out)`` writes a new saved-model folder that
``load_model``, ``fusionrec evaluate``, ``recommend`` and ``serve`` read unchanged
(docs/compression.md). Heavy dependencies (torchao, onnx, onnxruntime) load only when a
method needs them: ``pip install fusionrec[compress]``.
"""

from fusionrec.compress.folder import (
    MANIFEST_FILE,
    compress_folder,
    compress_model,
    folder_bytes,
    read_manifest,
)
from fusionrec.compress.model import CompressedConfig, CompressedModel
from fusionrec.compress.spec import METHODS, CompressionSpec, parse_method

__all__ = [
    "compress_folder",
    "compress_model",
    "folder_bytes",
    "read_manifest",
    "MANIFEST_FILE",
    "CompressedModel",
    "CompressedConfig",
    "CompressionSpec",
    "parse_method",
    "METHODS",
]
