"""Conformance checks shared by the SASRec / two-tower / DeepFM tests.

Stand-in for ``fusionrec.testing.check_recommender`` (used instead when it exists)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Dataset
from fusionrec.errors import UnknownIdError
from fusionrec.models import load_model


def check_model(cls, params: dict, ds: Dataset, tmp_path: Path) -> None:
    """Config round-trip, fit returns self, seeded fit reproducible, scores finite/right shape,
    unknown ids, exclude_seen, save->load equal scores, batch == single-user scores."""
    try:
        from fusionrec.testing import check_recommender
    except ImportError:
        check_recommender = None
    if check_recommender is not None:  # the shared checks, on the shared toy data (all side info)
        check_recommender(cls, params)
        check_recommender(cls, params, ds, k=2)
        return
    model = cls(**params)
    assert cls(model.config.model_dump()).config == model.config
    assert model.fit(ds, seed=3) is model
    users = ds.users.ids
    s = model.score(users)
    assert s.shape == (ds.n_users, ds.n_items) and s.dtype == np.float32
    assert np.isfinite(s).all()
    again = cls(**params).fit(ds, seed=3).score(users)
    np.testing.assert_allclose(again, s, rtol=1e-5, atol=1e-6)
    sub = model.score(users[:2], ds.items.ids[[3, 1]])
    np.testing.assert_allclose(sub, s[:2][:, [3, 1]], rtol=1e-4, atol=1e-5)
    single = np.vstack([model.score([u]) for u in users])
    np.testing.assert_allclose(single, s, rtol=1e-4, atol=1e-5)
    with pytest.raises(UnknownIdError):
        model.score(["no-such-user"])
    rec = model.recommend(users, k=ds.n_items)
    seen = ds.matrix("csr")
    for u, grp in rec.groupby("user_id"):
        idx = ds.items.to_idx(grp["item_id"].to_numpy())
        assert not seen[ds.users.index(u)].toarray()[0, idx].any()
    fb = model.recommend(["no-such-user"], k=2)
    assert fb["fallback"].all() and len(fb) == 2
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is cls and loaded.config == model.config
    np.testing.assert_allclose(loaded.score(users), s, rtol=1e-5, atol=1e-5)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run faster on one intra-op thread (and do not fight other test processes)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
