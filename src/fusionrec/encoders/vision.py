"""Raw images -> item vectors through a pretrained vision backbone (ViT, CLIP's vision tower,
or any Hugging Face image model), behind the text encoder's interface: ``load_vision_encoder
(name_or_path)`` resolves a local folder or a Hugging Face Hub name (the local HF cache when the
hub is offline), and ``encode(images, batch_size, normalize)`` returns a float32 (n, dim) matrix.

Pooling: CLIP checkpoints give their projected ``image_embeds`` (the space CLIP's text tower
shares); other models their ``pooler_output`` when they have one, else the mean of the last
hidden states.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.encoders._raw import l2_rows, load_hf_parts, resolve_folder
from fusionrec.errors import ConfigError, DataFormatError

__all__ = ["VisionEncoder", "load_vision_encoder", "IMAGE_SUFFIXES", "read_image"]

#: File suffixes ``fusionrec attach-modality --kind image`` reads.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_image(path: str | os.PathLike) -> Any:
    """The image at ``path`` as an RGB ``PIL.Image``; DataFormatError naming the file if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise DataFormatError(str(path), None, f"not a readable image ({e})") from None


class VisionEncoder:
    """A loaded image model and its image processor (``kind``: "clip" or "generic")."""

    modality = "image"

    def __init__(self, name: str, model_dir: Path, device: str = "cpu") -> None:
        self.name = name
        self.model_dir = model_dir
        self.device = device
        self.module, self.processor, self.kind, self.dim = load_hf_parts(
            model_dir, name, "vision", device
        )

    def _pool(self, inputs: dict[str, Any]) -> Any:
        out = self.module(**inputs)
        if self.kind == "clip":
            return out.image_embeds
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled
        return out.last_hidden_state.mean(1)

    def encode(
        self,
        images: Sequence[Any],
        batch_size: int = 16,
        normalize: bool = True,
    ) -> np.ndarray:
        """(n, dim) float32 vectors of ``images`` (PIL images or file paths)."""
        import torch

        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        rows = []
        self.module.eval()
        for s in range(0, len(images), batch_size):
            batch = [read_image(x) if isinstance(x, (str, os.PathLike)) else x for x in images[s : s + batch_size]]
            inputs = self.processor(images=batch, return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            with torch.no_grad():
                rows.append(self._pool(inputs).float().cpu().numpy())
        out = np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)
        return l2_rows(out) if normalize else out.astype(np.float32)


def load_vision_encoder(name_or_path: str, device: str = "cpu") -> VisionEncoder:
    """A :class:`VisionEncoder` for a local folder or a Hub name (see the module doc)."""
    return VisionEncoder(name_or_path, resolve_folder(name_or_path, "vision"), device)
