"""ease_large: exact at full rank (equals dense EASE), close at lower rank, memory check."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _dense_data import random_dataset

from fusionrec.errors import InsufficientMemoryError
from fusionrec.models import get_model, load_model
from fusionrec.models.classic.ease import EASE
from fusionrec.models.classic.ease_large import EASELarge, ease_large_memory, low_rank_gram
from fusionrec.nn import linalg
from fusionrec.testing import checkerboard


def test_registered() -> None:
    assert get_model("ease_large") is EASELarge


def test_full_rank_equals_dense_ease() -> None:
    """With rank >= n_items the diagonal + low-rank Gram matrix is exact: D = λI, A·Aᵀ = XᵀX."""
    ds = random_dataset(60, 25, 0.3, seed=1)
    dense = EASE(reg_weight=3.0, dtype="float64").fit(ds)
    large = EASELarge(reg_weight=3.0, rank=25, oversample=0, dtype="float64").fit(ds)
    users = np.arange(60)
    np.testing.assert_allclose(large.score_indices(users), dense.score_indices(users), atol=1e-5)
    np.testing.assert_allclose(large.D_, 3.0, atol=1e-6)
    items = np.array([3, 0, 7])
    np.testing.assert_allclose(
        large.score_indices(users[:5], items), dense.score_indices(users[:5], items), atol=1e-5
    )
    hist = [np.array([0, 4, 9]), np.array([], dtype=np.int64)]
    np.testing.assert_allclose(large.score_histories(hist), dense.score_histories(hist), atol=1e-5)


def test_low_rank_gram_finds_the_top_eigenpairs() -> None:
    x = sp.random(80, 30, density=0.3, random_state=2, format="csr")
    x.data[:] = 1.0
    g = (x.T @ x).toarray()
    w, v = np.linalg.eigh(g)
    vr, lam = low_rank_gram(x, rank=5, oversample=20, power_iters=6, dtype=torch.float64)
    np.testing.assert_allclose(lam.numpy(), w[::-1][:5], rtol=1e-6)
    overlap = np.abs(np.sum(vr.numpy() * v[:, ::-1][:, :5], axis=0))  # |cos| of each pair
    np.testing.assert_allclose(overlap, 1.0, atol=1e-5)


def test_lower_rank_keeps_the_diagonal_and_ranks_the_checkerboard() -> None:
    ds, target = checkerboard(users_per_group=20, items_per_group=5)
    m = EASELarge(reg_weight=1.0, rank=2).fit(ds, seed=1)
    rec = m.recommend(list(target), k=1)
    assert dict(zip(rec["user_id"], rec["item_id"], strict=True)) == target
    assert np.all(m.D_ >= 1.0)  # D = residual diagonal (>= 0) + λ


def test_save_load_scores_identically(tmp_path) -> None:
    ds = random_dataset(40, 20, 0.3, seed=2)
    m = EASELarge(reg_weight=2.0, rank=6).fit(ds, seed=3)
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    np.testing.assert_array_equal(back.score_indices(np.arange(40)), m.score_indices(np.arange(40)))


def test_refuses_a_rank_that_does_not_fit(monkeypatch) -> None:
    ds = random_dataset(40, 20, 0.3, seed=2)
    # cols = min(rank + oversample, users, items) = 20: (2·40 + 5·20)·20·4 B = 14,400 B
    assert ease_large_memory(40, 20, 512, 16) == 14_400
    monkeypatch.setattr(linalg, "available_memory", lambda device="cpu": 10_000)
    with pytest.raises(InsufficientMemoryError, match="ease_large on 20 items, rank 512.*lower rank"):
        EASELarge().fit(ds)
