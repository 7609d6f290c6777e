"""Batch makers shared by the implicit-feedback torch models."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import torch

from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import NegativeSampler

__all__ = ["pair_batches", "cached_sampler"]


def cached_sampler(owner: object, dataset: Dataset) -> NegativeSampler:
    """A NegativeSampler over ``dataset``'s positives, built once per dataset and kept on
    ``owner`` through a weak reference (the owner never keeps the dataset alive)."""
    cache = getattr(owner, "_neg_sampler_cache", None)
    if cache is None or cache[0]() is not dataset:
        cache = (weakref.ref(dataset), NegativeSampler(dataset.matrix("csr")))
        owner._neg_sampler_cache = cache  # type: ignore[attr-defined]
    return cache[1]


def pair_batches(
    dataset: Dataset,
    rng: np.random.Generator,
    batch_size: int,
    num_negatives: int,
    device: torch.device | str = "cpu",
    sampler: NegativeSampler | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """One epoch of ``{"users": (B,), "pos": (B,), "neg": (B, num_negatives)}`` batches.

    Every training interaction appears once per epoch in an order shuffled by ``rng``;
    negatives are drawn uniformly among the user's non-interacted items (``sampler`` built
    from ``dataset`` when not given).
    """
    if sampler is None:
        sampler = NegativeSampler(dataset.matrix("csr"))
    n = dataset.n_interactions
    order = rng.permutation(n)
    users = dataset.user_idx[order]
    items = dataset.item_idx[order]
    negs = sampler.sample(users, num_negatives, rng)
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        yield {
            "users": torch.from_numpy(users[sl].copy()).to(device),
            "pos": torch.from_numpy(items[sl].copy()).to(device),
            "neg": torch.from_numpy(negs[sl].copy()).to(device),
        }
