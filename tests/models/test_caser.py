"""Caser: position windows known answer, window-only dependence, a planted cycle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _seq_data import cycle, next_item_accuracy

from fusionrec.errors import ConfigError
from fusionrec.models import get_model
from fusionrec.models.sequential.caser import Caser, position_windows

FAST = dict(embedding_dim=16, window=3, n_h=4, max_len=5, epochs=3, batch_size=8)


def test_registered():
    assert get_model("caser") is Caser


def test_position_windows_known_answer():
    x = torch.arange(1, 5, dtype=torch.float32).view(1, 4, 1)  # items 1, 2, 3, 4 (d = 1)
    w = position_windows(x, 3)
    assert w.shape == (1, 4, 3, 1)
    assert w[0, :, :, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]


def test_reads_only_the_last_window_items():
    m = Caser(**{**FAST, "max_len": 6}).fit(cycle(), seed=0)
    m.module_.eval()
    with torch.no_grad():
        a = m.module_.last(torch.tensor([[1, 2, 3, 4, 5, 6]]))
        b = m.module_.last(torch.tensor([[9, 9, 9, 4, 5, 6]]))  # same last 3 items
        c = m.module_.last(torch.tensor([[1, 2, 3, 4, 9, 6]]))
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-4)


def test_next_item_pattern():
    ds = cycle()
    m = Caser(
        embedding_dim=32, window=3, max_len=10, dropout=0.1, epochs=40, batch_size=16, lr=1e-2
    ).fit(ds, seed=0)  # fmt: skip
    assert next_item_accuracy(m, ds) >= 0.95


def test_needs_filters():
    with pytest.raises(ConfigError, match="filters"):
        Caser(**{**FAST, "n_v": 0, "n_h": 0})
    assert np.isfinite(Caser(**{**FAST, "n_v": 0}).fit(cycle(), seed=0).score_indices([0])).all()
    assert np.isfinite(Caser(**{**FAST, "n_h": 0}).fit(cycle(), seed=0).score_indices([0])).all()
