"""LightGCN's cap on steps per epoch (each step propagates over the whole graph)."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.models.graph.lightgcn import LightGCN, epoch_batch_size


@pytest.mark.parametrize(
    ("n", "batch", "cap", "want"),
    [
        (80_000, 4096, 64, 4096),  # ml-100k's training part: 20 steps, under the cap
        (1_000_000, 4096, 64, 15_625),  # 64 steps of 15,625
        (1_000_001, 4096, 64, 15_626),  # ceil: still 64 steps
        (1_000_000, 4096, None, 4096),  # no cap
        (10, 4, 2, 5),
    ],
)
def test_epoch_batch_size(n, batch, cap, want):
    assert epoch_batch_size(n, batch, cap) == want
    if cap is not None:
        assert -(-n // epoch_batch_size(n, batch, cap)) <= cap


def test_batches_respect_the_cap(tiny):
    m = LightGCN(epochs=1, batch_size=2, max_steps_per_epoch=3, embedding_dim=4).fit(tiny, seed=0)
    sizes = [len(b["users"]) for b in m.batches(tiny, np.random.default_rng(0))]
    assert len(sizes) == 3 and sum(sizes) == tiny.n_interactions
    m = LightGCN(epochs=1, batch_size=2, max_steps_per_epoch=None, embedding_dim=4).fit(tiny, seed=0)
    sizes = [len(b["users"]) for b in m.batches(tiny, np.random.default_rng(0))]
    assert sizes[0] == 2 and len(sizes) == -(-tiny.n_interactions // 2)
