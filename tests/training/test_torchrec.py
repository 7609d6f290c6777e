"""TorchRec-sharded embedding tables (optional ``torchrec`` extra): 2 gloo processes train the
BPR tables table-wise and column-wise and end where the dense one-process model ends."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.training.torchrec_sharding import (
    torchrec_available,
    train_dense_bpr,
    train_sharded_bpr,
)

needs_torchrec = pytest.mark.skipif(not torchrec_available(), reason="torchrec extra not installed (docs/scale.md)")


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    u = rng.integers(0, 50, 2000)
    return u, (u % 2) * 20 + rng.integers(0, 20, 2000)  # two blocks of items: a learnable signal


@needs_torchrec
@pytest.mark.parametrize("sharding", ["column_wise", pytest.param("table_wise", marks=pytest.mark.slow)])
def test_sharded_tables_train_like_dense(sharding: str) -> None:
    u, i = _data()
    kw = {"dim": 16, "epochs": 3, "batch_size": 256, "lr": 0.1, "seed": 0}
    user, item, placement = train_sharded_bpr(u, i, 50, 40, sharding=sharding, **kw)
    d_user, d_item = train_dense_bpr(u, i, 50, 40, **kw)
    if sharding == "column_wise":  # every table split across both ranks
        assert placement == {"user": [0, 1], "item": [0, 1]}
    else:  # each table whole on one rank, the two tables on different ranks
        assert sorted(placement["user"] + placement["item"]) == [0, 1]
    # the same steps as the dense model (FBGEMM's fused Adagrad vs torch's: float noise)
    np.testing.assert_allclose(user, d_user, atol=1e-2)
    np.testing.assert_allclose(item, d_item, atol=1e-2)
    assert np.abs(d_item - item).max() < np.abs(d_item).max() / 10
    scores = user @ item.T  # the learned blocks: a user prefers its own half of the items
    own = np.where((np.arange(50) % 2)[:, None] == 0, scores[:, :20].mean(1, keepdims=True), scores[:, 20:].mean(1, keepdims=True))
    other = np.where((np.arange(50) % 2)[:, None] == 0, scores[:, 20:].mean(1, keepdims=True), scores[:, :20].mean(1, keepdims=True))
    assert (own > other).mean() > 0.9


@needs_torchrec
def test_bad_sharding_is_refused() -> None:
    u, i = _data()
    with pytest.raises(ValueError, match="row_wise sharding needs CUDA"):
        train_sharded_bpr(u, i, 50, 40, sharding="row_wise")
    with pytest.raises(ValueError, match="sharding must be one of"):
        train_sharded_bpr(u, i, 50, 40, sharding="grid")  # type: ignore[arg-type]


@pytest.mark.skipif(torchrec_available(), reason="checks the message shown without the extra")
def test_without_torchrec_the_error_names_the_extra() -> None:
    u, i = _data()
    with pytest.raises(ImportError, match="torchrec extra"):
        train_sharded_bpr(u, i, 50, 40)
