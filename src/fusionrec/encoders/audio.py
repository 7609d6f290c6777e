"""Raw audio -> item vectors through a pretrained audio model (wav2vec2, HuBERT, the Audio
Spectrogram Transformer, ...), behind the text encoder's interface: ``load_audio_encoder
(name_or_path)`` resolves a local folder or a Hugging Face Hub name, and ``encode(clips,
batch_size, normalize)`` returns a float32 (n, dim) matrix.

Clips are 1-d float waveforms at the model's sampling rate, or paths of PCM WAV files (read with
the standard library's ``wave``, averaged to mono and resampled with
``scipy.signal.resample_poly``: no audio codec dependency). Pooling: ``pooler_output`` when the
model has one (AST), else the mean of the last hidden states over time (wav2vec2).
"""

from __future__ import annotations

import os
import wave
from collections.abc import Sequence
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.encoders._raw import l2_rows, load_hf_parts, resolve_folder
from fusionrec.errors import ConfigError, DataFormatError

__all__ = ["AudioEncoder", "load_audio_encoder", "read_wav", "AUDIO_SUFFIXES"]

#: File suffixes ``fusionrec attach-modality --kind audio`` reads.
AUDIO_SUFFIXES: tuple[str, ...] = (".wav",)
_PCM = {1: (np.uint8, 128.0, 128.0), 2: (np.int16, 0.0, 32768.0), 4: (np.int32, 0.0, 2147483648.0)}


def read_wav(path: str | os.PathLike, sampling_rate: int) -> np.ndarray:
    """Mono float32 waveform in [-1, 1] of the PCM WAV file at ``path``, at ``sampling_rate``."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as e:
        raise DataFormatError(str(path), None, f"not a readable PCM WAV file ({e})") from None
    if width not in _PCM:
        raise DataFormatError(str(path), None, f"{8 * width}-bit samples; expected 8, 16 or 32-bit PCM")
    dtype, offset, scale = _PCM[width]
    x = (np.frombuffer(raw, dtype=dtype).astype(np.float64) - offset) / scale
    x = x.reshape(-1, channels).mean(1)
    if rate != sampling_rate and len(x):
        from scipy.signal import resample_poly

        g = gcd(rate, sampling_rate)
        x = resample_poly(x, sampling_rate // g, rate // g)
    return x.astype(np.float32)


class AudioEncoder:
    """A loaded audio model and its feature extractor."""

    modality = "audio"

    def __init__(self, name: str, model_dir: Path, device: str = "cpu") -> None:
        self.name = name
        self.model_dir = model_dir
        self.device = device
        self.module, self.processor, self.kind, self.dim = load_hf_parts(model_dir, name, "audio", device)
        self.sampling_rate = int(getattr(self.processor, "sampling_rate", 16000))

    def _pool(self, inputs: dict[str, Any]) -> Any:
        out = self.module(**inputs)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled
        h = out.last_hidden_state
        return h.mean(1)

    def encode(self, clips: Sequence[Any], batch_size: int = 4, normalize: bool = True) -> np.ndarray:
        """(n, dim) float32 vectors of ``clips`` (waveforms or WAV paths). Clips are encoded one
        at a time inside a batch-sized loop so that padding never changes a clip's vector."""
        import torch

        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        rows = []
        for c in clips:
            x = read_wav(c, self.sampling_rate) if isinstance(c, (str, os.PathLike)) else np.asarray(c, np.float32)
            if x.ndim != 1 or len(x) == 0:
                raise ConfigError(f"an audio clip must be a non-empty 1-d waveform, got shape {x.shape}")
            inputs = self.processor(x, sampling_rate=self.sampling_rate, return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_values", "input_features")}
            with torch.no_grad():
                rows.append(self._pool(inputs).float().cpu().numpy())
        out = np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)
        return l2_rows(out) if normalize else out.astype(np.float32)


def load_audio_encoder(name_or_path: str, device: str = "cpu") -> AudioEncoder:
    """An :class:`AudioEncoder` for a local folder or a Hub name (see the module doc)."""
    return AudioEncoder(name_or_path, resolve_folder(name_or_path, "audio"), device)
