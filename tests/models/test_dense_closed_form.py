"""Dense closed forms through torch (fusionrec.nn.linalg): known answers, precision, the memory
check that refuses a job which does not fit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _dense_data import random_dataset

from fusionrec.errors import ConfigError, InsufficientMemoryError
from fusionrec.models.classic import ease as ease_mod
from fusionrec.models.classic.ease import EASE, ease_closed_form, ease_memory, ease_weights
from fusionrec.nn import linalg
from fusionrec.nn.linalg import format_bytes, require_memory, sparse_gram, spd_inverse


def test_spd_inverse_2x2_known_answer() -> None:
    # [[4, 2], [2, 3]]⁻¹ = [[3, -2], [-2, 4]] / 8
    a = torch.tensor([[4.0, 2.0], [2.0, 3.0]], dtype=torch.float64)
    out = spd_inverse(a)
    assert out.data_ptr() == a.data_ptr()  # written over the input
    np.testing.assert_allclose(out.numpy(), np.array([[3, -2], [-2, 4]]) / 8, atol=1e-15)


def test_spd_inverse_refuses_a_singular_matrix() -> None:
    with pytest.raises(ConfigError, match="not positive definite"):
        spd_inverse(torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64))
    with pytest.raises(ConfigError, match="square"):
        spd_inverse(torch.zeros(2, 3))


def test_sparse_gram_equals_dense_product_across_blocks() -> None:
    x = sp.random(40, 13, density=0.3, random_state=1, format="csr")
    x.data[:] = 1.0
    dense = x.toarray()
    # block_entries=20 -> one item row per block: 13 blocks
    g = sparse_gram(x, torch.float64, "cpu", block_entries=20)
    np.testing.assert_array_equal(g.numpy(), dense.T @ dense)


def test_torch_solve_equals_numpy_closed_form_on_a_small_matrix() -> None:
    """B = I - P·diag(1/diag(P)), P = (G + λI)⁻¹, computed independently with numpy in float64."""
    ds = random_dataset(30, 12, 0.3, seed=3)
    x = ds.matrix("csr").toarray().astype(np.float64)
    lam = 2.5
    p = np.linalg.inv(x.T @ x + lam * np.eye(12))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    for dtype, tol in (("float64", 1e-7), ("float32", 2e-5)):
        b = ease_closed_form(ds, lam, dtype=dtype, device="cpu")
        assert b.dtype == np.float32 and b.shape == (12, 12)
        np.testing.assert_allclose(b, expected, atol=tol)
    np.testing.assert_allclose(ease_weights(x.T @ x, lam), expected, atol=1e-7)
    model = EASE(reg_weight=lam, dtype="float64").fit(ds)
    np.testing.assert_allclose(model.score_indices(np.arange(30)), x @ expected, atol=1e-5)


def test_side_term_enters_the_gram_matrix() -> None:
    ds = random_dataset(25, 10, 0.3, seed=4)
    x = ds.matrix("csr").toarray().astype(np.float64)
    f = np.random.default_rng(5).normal(size=(10, 3))
    p = np.linalg.inv(x.T @ x + 0.7 * f @ f.T + 1.5 * np.eye(10))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    b = ease_closed_form(ds, 1.5, dtype="float64", device="cpu", side=f, side_weight=0.7)
    np.testing.assert_allclose(b, expected, atol=1e-7)


def test_memory_estimate_is_two_dense_matrices() -> None:
    n = 25_000
    assert ease_memory(n, "float32") == 2 * n * n * 4 + linalg.GRAM_BLOCK_BYTES
    assert ease_memory(n, "float64") - linalg.GRAM_BLOCK_BYTES == 2 * (
        ease_memory(n, "float32") - linalg.GRAM_BLOCK_BYTES
    )


def test_require_memory_names_need_and_have(monkeypatch) -> None:
    monkeypatch.setattr(linalg, "available_memory", lambda device="cpu": 1024**3)
    require_memory(int(0.5 * 1024**3), "small job", "cpu")  # fits: no error
    with pytest.raises(InsufficientMemoryError) as err:
        require_memory(5 * 1024**3, "big job", "cpu", hint="try less")
    msg = str(err.value)
    assert "big job needs about 5.0 GiB of RAM" in msg
    assert "1.0 GiB is available" in msg and msg.endswith("try less")


def test_ease_refuses_a_catalogue_that_does_not_fit(monkeypatch) -> None:
    ds = random_dataset(20, 50, 0.2, seed=6)
    # 50 items need 2·50²·4 B + one Gram block of 50² entries = 90,000 B; pretend 64 KiB free
    assert ease_memory(50) == 90_000
    monkeypatch.setattr(linalg, "available_memory", lambda device="cpu": 64 * 1024)
    with pytest.raises(InsufficientMemoryError, match=r"EASE on 50 items \(float32\) needs about"):
        EASE(reg_weight=1.0).fit(ds)
    with pytest.raises(InsufficientMemoryError, match="use dtype='float32'"):
        EASE(reg_weight=1.0, dtype="float64").fit(ds)
    with pytest.raises(ConfigError, match="above max_items=10"):
        EASE(reg_weight=1.0, max_items=10).fit(ds)
    monkeypatch.setattr(linalg, "available_memory", lambda device="cpu": 1024**2)
    assert ease_mod.EASE(reg_weight=1.0).fit(ds).B_.shape == (50, 50)  # 1 MiB is enough


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 1024**3) == "5.0 GiB"


def test_dtype_is_validated() -> None:
    with pytest.raises(ValueError):
        EASE(dtype="float16")
