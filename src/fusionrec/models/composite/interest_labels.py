"""Interest labels of items (and users) for label propagation.

An *interest label* is a tag an item carries, in one label space shared by users and items:

- ``genres`` — the tags of an item ``token``/``token_seq`` feature (ml-100k: ``class``);
- ``text`` — LM-derived topics: the items' text embeddings (an attached item embedding, or
  the text encoder over the item text) clustered by k-means into ``n`` topics; an item's
  labels are its softmax-weighted similarities to the topic centres (soft labels);
- ``user_tags`` — the tags users carry (user ``token``/``token_seq`` features such as
  ml-100k's occupation, or a user tag table): seeded on the users themselves, and on items as
  the share of each item's users with the tag, so both sides live in the same space.

:func:`item_label_matrix` builds the items x labels matrix from the item sources;
:func:`user_tag_labels` the users x tags matrix of the user side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = ["item_label_matrix", "multi_hot", "text_topics", "user_tag_labels"]


def multi_hot(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(rows x vocabulary) 0/1 matrix of a token / token_seq column, and the vocabulary."""
    seqs = [
        [] if v is None or (isinstance(v, float) and np.isnan(v))
        else ([str(v)] if isinstance(v, str) else [str(t) for t in v])
        for v in column.tolist()
    ]
    vocab = sorted({t for s in seqs for t in s})
    pos = {t: j for j, t in enumerate(vocab)}
    out = np.zeros((len(seqs), len(vocab)), np.float32)
    for i, s in enumerate(seqs):
        for t in s:
            out[i, pos[t]] = 1.0
    return out, vocab


def text_topics(
    vectors: np.ndarray, n_topics: int, seed: int, temperature: float = 0.05
) -> np.ndarray:
    """(n_items, n_topics) soft topic labels: k-means (scipy, k-means++ start) over the
    L2-normalised ``vectors``, then softmax(cos(item, centre) / temperature) per item."""
    from scipy.cluster.vq import kmeans2

    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or len(v) == 0:
        raise ConfigError(f"text topics need an (n_items, dim) matrix, got shape {v.shape}")
    k = min(int(n_topics), len(v))
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    centres, _ = kmeans2(v, k, minit="++", seed=np.random.default_rng(seed))
    centres = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    z = (v @ centres.T) / temperature
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def _text_vectors(dataset: Dataset, embedding: str, model: str, template: str | None) -> np.ndarray:
    if embedding in dataset.item_embeddings:
        return np.asarray(dataset.item_embeddings[embedding], dtype=np.float32)
    if dataset.item_features is None:
        raise ConfigError(
            f"interest labels 'text': dataset {dataset.name!r} has neither an item embedding "
            f"{embedding!r} nor item text to encode"
        )
    from fusionrec.encoders.text import encode_items

    return encode_items(dataset, model, template)


def item_label_matrix(
    dataset: Dataset,
    sources: Sequence[str],
    genre_field: str = "class",
    n_topics: int = 32,
    text_embedding: str = "text",
    text_model: str | None = None,
    text_template: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """(n_items, n_labels) item interest labels from ``sources`` ("genres", "text"), and the
    label names (``genre:<tag>``, ``topic:<j>``)."""
    blocks, names = [], []
    for src in sources:
        if src == "genres":
            f = dataset.item_features
            if f is None or genre_field not in f.columns:
                raise ConfigError(
                    f"interest labels 'genres': dataset {dataset.name!r} has no item feature "
                    f"{genre_field!r}"
                )
            m, vocab = multi_hot(f[genre_field])
            blocks.append(m)
            names += [f"genre:{t}" for t in vocab]
        elif src == "text":
            from fusionrec.encoders.text import DEFAULT_TEXT_MODEL

            vec = _text_vectors(dataset, text_embedding, text_model or DEFAULT_TEXT_MODEL, text_template)
            if len(vec) != dataset.n_items:
                raise ConfigError(
                    f"item embedding {text_embedding!r} has {len(vec)} rows for {dataset.n_items} items"
                )
            t = text_topics(vec, n_topics, seed)
            blocks.append(t)
            names += [f"topic:{j}" for j in range(t.shape[1])]
        else:
            raise ConfigError(f"unknown item label source {src!r}; use genres or text")
    if not blocks:
        return np.zeros((dataset.n_items, 0), np.float32), []
    return np.concatenate(blocks, 1).astype(np.float32), names


def user_tag_labels(dataset: Dataset, fields: Sequence[str] = ()) -> tuple[np.ndarray, list[str]]:
    """(n_users, n_tags) 0/1 user tags from user ``token``/``token_seq`` feature ``fields``
    (all such fields when empty), names ``<field>:<tag>``."""
    f = dataset.user_features
    types = dict(dataset.user_feature_types)
    if f is None:
        raise ConfigError(f"interest labels 'user_tags': dataset {dataset.name!r} has no user features")
    use = list(fields) or [c for c in f.columns if types.get(c) in ("token", "token_seq")]
    missing = [c for c in use if c not in f.columns]
    if missing:
        raise ConfigError(f"user tag fields {missing} are not user features of {dataset.name!r}")
    if not use:
        raise ConfigError(f"dataset {dataset.name!r} has no token user feature to use as tags")
    blocks, names = [], []
    for c in use:
        m, vocab = multi_hot(f[c])
        blocks.append(m)
        names += [f"{c}:{t}" for t in vocab]
    return np.concatenate(blocks, 1), names


def item_side_of_user_tags(interactions: sp.csr_matrix, user_tags: np.ndarray) -> np.ndarray:
    """(n_items, n_tags): each item's share of its users carrying each tag."""
    x = sp.csr_matrix(interactions, dtype=np.float64)
    x.data[:] = 1.0
    counts = np.asarray(x.T @ user_tags)
    return (counts / np.maximum(np.asarray(x.sum(0)).ravel()[:, None], 1.0)).astype(np.float32)
