"""Shared loading code of the raw-modality encoders (vision.py, audio.py): folder resolution,
model + processor loading from a Hugging Face folder, row normalisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.errors import ConfigError

_WHAT = {"vision": "vision model", "audio": "audio model"}


def resolve_folder(name_or_path: str, family: str) -> Path:
    """The local folder of ``name_or_path`` (a folder, or a Hub name in the local HF cache /
    downloaded when the hub is online); ConfigError naming the model otherwise."""
    from fusionrec.encoders.text import resolve_model_dir

    try:
        return resolve_model_dir(name_or_path)
    except ConfigError as e:
        raise ConfigError(str(e).replace("text model", _WHAT[family], 1)) from None


def load_hf_parts(model_dir: Path, name: str, family: str, device: str) -> tuple[Any, Any, str, int]:
    """(model, processor, kind, output dim) of the image/audio model in ``model_dir``.

    vision: CLIP checkpoints (full CLIP or its vision tower) load as
    ``CLIPVisionModelWithProjection`` (kind "clip"), anything else with ``AutoModel``; the
    processor is ``AutoImageProcessor``. audio: ``AutoModel`` + ``AutoFeatureExtractor``
    (wav2vec2, HuBERT, AST, ...)."""
    import transformers as tf

    what = _WHAT[family]
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"{what} {name!r}: {model_dir} has no config.json (not a Hugging Face model folder)")
    try:
        cfg = tf.AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
        kind = "generic"
        if family == "vision":
            if cfg.model_type in ("clip", "clip_vision_model"):
                kind = "clip"
                model = tf.CLIPVisionModelWithProjection.from_pretrained(str(model_dir), local_files_only=True)
                dim = int(model.config.projection_dim)
            else:
                model = tf.AutoModel.from_pretrained(str(model_dir), local_files_only=True)
                dim = int(model.config.hidden_size)
            processor = tf.AutoImageProcessor.from_pretrained(str(model_dir), local_files_only=True)
        else:
            model = tf.AutoModel.from_pretrained(str(model_dir), local_files_only=True)
            dim = int(model.config.hidden_size)
            processor = tf.AutoFeatureExtractor.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{what} {name!r} at {model_dir} could not be loaded: {e}") from None
    return model.to(device).eval(), processor, kind, dim


def l2_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float32."""
    m = np.asarray(m, dtype=np.float32)
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, n, out=np.zeros_like(m), where=n > 1e-12)
