"""Vision and audio encoders on tiny randomly initialised models built from a config (saved to a
temp folder and loaded through the real loading code; no hub download)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from fusionrec.errors import ConfigError, DataFormatError

pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    d = tmp_path_factory.mktemp("vit")
    cfg = ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32,
    )  # fmt: skip
    ViTModel(cfg).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    d = tmp_path_factory.mktemp("clip")
    cfg = CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, projection_dim=12,
    )  # fmt: skip
    CLIPVisionModelWithProjection(cfg).save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def w2v_dir(tmp_path_factory) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    d = tmp_path_factory.mktemp("w2v")
    cfg = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    Wav2Vec2Model(cfg).save_pretrained(d)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(d)
    return d


def _image(seed: int) -> object:
    arr = np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    return Image.fromarray(arr)


def _write_wav(path: Path, x: np.ndarray, rate: int, channels: int = 1) -> None:
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def test_vit_encoder_shapes_norms_and_determinism(vit_dir):
    from fusionrec.encoders.vision import load_vision_encoder

    enc = load_vision_encoder(str(vit_dir))
    assert enc.kind == "generic" and enc.dim == 16
    ims = [_image(0), _image(1), _image(0)]
    m = enc.encode(ims, batch_size=2)
    assert m.shape == (3, 16) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(m[0], m[2], atol=1e-6)  # same image, other batch
    assert not np.allclose(m[0], m[1])


def test_clip_vision_uses_the_projection(clip_dir, tmp_path):
    from fusionrec.encoders.vision import load_vision_encoder

    enc = load_vision_encoder(str(clip_dir))
    assert enc.kind == "clip" and enc.dim == 12
    p = tmp_path / "a.png"
    _image(3).save(p)
    m = enc.encode([p, _image(3)], normalize=False)  # a path and the same image in memory
    assert m.shape == (2, 12)
    np.testing.assert_allclose(m[0], m[1], atol=1e-5)


def test_read_wav_known_answer(tmp_path):
    from fusionrec.encoders.audio import read_wav

    p = tmp_path / "s.wav"
    stereo = np.array([[0.5, -0.5], [0.25, 0.25], [-1.0, 0.0]]).ravel()
    _write_wav(p, stereo, 8000, channels=2)
    x = read_wav(p, 8000)
    np.testing.assert_allclose(x, [0.0, 0.25, -0.5], atol=1e-4)  # mono = mean of channels
    _write_wav(p, np.sin(np.linspace(0, 20, 800)), 8000)
    assert len(read_wav(p, 16000)) == 1600  # resampled 8 kHz -> 16 kHz
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    with pytest.raises(DataFormatError, match="bad.wav"):
        read_wav(bad, 16000)


def test_wav2vec2_encoder(w2v_dir, tmp_path):
    from fusionrec.encoders.audio import load_audio_encoder

    enc = load_audio_encoder(str(w2v_dir))
    assert enc.dim == 16 and enc.sampling_rate == 16000
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.1, 4000), rng.normal(0, 0.1, 3000)
    p = tmp_path / "a.wav"
    _write_wav(p, a, 16000)
    m = enc.encode([a, b, p])
    assert m.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(m[0], m[2], atol=2e-3)  # file = its waveform (16-bit rounding)
    assert not np.allclose(m[0], m[1])
    with pytest.raises(ConfigError, match="1-d waveform"):
        enc.encode([np.zeros((2, 10))])


def test_folder_encoding_keys_by_file_stem(vit_dir, tmp_path):
    from fusionrec.encoders.modality_files import encode_folder, load_raw_encoder

    for name, seed in (("i2", 2), ("i1", 1)):
        _image(seed).save(tmp_path / f"{name}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    enc = load_raw_encoder("image", str(vit_dir))
    ids, m = encode_folder(enc, tmp_path, "image")
    assert list(ids) == ["i1", "i2"] and m.shape == (2, 16)
    np.testing.assert_allclose(m[0], enc.encode([_image(1)])[0], atol=1e-6)
    _image(5).save(tmp_path / "i1.jpg")
    with pytest.raises(ConfigError, match="'i1' has two files"):
        encode_folder(enc, tmp_path, "image")


def test_loading_errors_name_the_problem(tmp_path):
    from fusionrec.encoders.modality_files import item_files, load_raw_encoder

    with pytest.raises(ConfigError, match="no config.json"):
        load_raw_encoder("image", str(tmp_path))
    with pytest.raises(ConfigError, match="audio model 'no-org/no-model' not found"):
        load_raw_encoder("audio", "no-org/no-model")
    with pytest.raises(ConfigError, match="unknown modality kind"):
        load_raw_encoder("video", str(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no audio files"):
        item_files(tmp_path, "audio")
