"""fit(..., init_from=DIR): weights copied by external id, new ids fresh, wrong sources refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _seq_data import cycle

from fusionrec.data import Dataset
from fusionrec.errors import ModelStateError
from fusionrec.models import get_model
from fusionrec.models.sequential.gru4rec import GRU4Rec
from fusionrec.models.warm_start import IdTable, id_tables

SEQ = dict(embedding_dim=8, state_dim=8, max_len=5, epochs=2, batch_size=8)
FROZEN = dict(optimizer="sgd", lr=1e-12, epochs=1)  # a fit that leaves the weights where they start


def _shuffled_plus_new(ds: Dataset) -> Dataset:
    """The same interactions with the item ids in another order, plus a new user and item."""
    df = pd.DataFrame(
        {
            "user_id": ds.users.ids[ds.user_idx],
            "item_id": ds.items.ids[ds.item_idx],
            "timestamp": ds.timestamp,
        }
    ).iloc[::-1]
    extra = pd.DataFrame(
        {"user_id": ["new_u"] * 3, "item_id": ["new_i", "i1", "i2"], "timestamp": [0.0, 1.0, 2.0]}
    )
    return Dataset.from_frames(pd.concat([extra, df], ignore_index=True))


def test_id_tables_guess():
    import torch

    sd = {
        "item_emb.weight": torch.zeros(6, 2),
        "user_emb.weight": torch.zeros(4, 2),
        "pad_item.weight": torch.zeros(6, 2),
        "fc.weight": torch.zeros(3, 2),
    }
    got = id_tables(sd, n_users=4, n_items=5)
    assert got == {"user_emb.weight": IdTable("user"), "item_emb.weight": IdTable("item", 1),
                   "pad_item.weight": IdTable("item", 1)}  # fmt: skip


def test_rows_follow_external_ids(tmp_path):
    src_ds = cycle()
    src = GRU4Rec(**SEQ).fit(src_ds, seed=0)
    src.save(tmp_path / "src")
    new_ds = _shuffled_plus_new(src_ds)
    warm = GRU4Rec(**{**SEQ, **FROZEN}).fit(new_ds, seed=3, init_from=tmp_path / "src")
    fresh = GRU4Rec(**{**SEQ, **FROZEN}).fit(new_ds, seed=3)
    assert warm.warm_start_.matched == {"item": 12}  # GRU4Rec has no user table
    assert warm.warm_start_.new == {"item": 1}
    old_vec, new_vec, fresh_vec = src.item_vectors(), warm.item_vectors(), fresh.item_vectors()
    for name in src_ds.items.ids:
        a = old_vec[src_ds.items.to_idx([name])[0]]
        b = new_vec[new_ds.items.to_idx([name])[0]]
        np.testing.assert_allclose(a, b, atol=1e-6)
    j = new_ds.items.to_idx(["new_i"])[0]
    np.testing.assert_allclose(new_vec[j], fresh_vec[j], atol=1e-6)  # new item: fresh init
    # non-id weights copied too: same history, same scores
    h = [src_ds.items.to_idx(["i3", "i4"])]
    hn = [new_ds.items.to_idx(["i3", "i4"])]
    s_old = pd.Series(src.score_histories(h)[0], index=src_ds.items.ids)
    s_new = pd.Series(warm.score_histories(hn)[0], index=new_ds.items.ids)
    np.testing.assert_allclose(s_old[src_ds.items.ids], s_new[src_ds.items.ids], atol=1e-5)


def test_warm_start_continues_training(tmp_path):
    """A warm-started fit starts from the source's quality, not from scratch."""
    ds = cycle()
    src = GRU4Rec(**{**SEQ, "epochs": 30, "lr": 1e-2}).fit(ds, seed=0)
    src.save(tmp_path / "src")
    warm = GRU4Rec(**{**SEQ, "epochs": 1, "lr": 1e-2}).fit(ds, seed=1, init_from=tmp_path / "src")
    cold = GRU4Rec(**{**SEQ, "epochs": 1, "lr": 1e-2}).fit(ds, seed=1)
    assert warm.history_.records[0]["loss"] < 0.5 * cold.history_.records[0]["loss"]


def test_refuses_other_class_and_other_shapes(tmp_path):
    ds = cycle()
    GRU4Rec(**SEQ).fit(ds, seed=0).save(tmp_path / "gru")
    caser = get_model("caser")(embedding_dim=8, max_len=5, epochs=1, batch_size=8)
    with pytest.raises(ModelStateError, match="'gru4rec' model"):
        caser.fit(ds, init_from=tmp_path / "gru")
    with pytest.raises(ModelStateError, match="shape"):
        GRU4Rec(**{**SEQ, "state_dim": 4}).fit(ds, init_from=tmp_path / "gru")


def test_matrix_factorisation_warm_start(tmp_path):
    """BPR's user and item tables are mapped the same way (no per-model code)."""
    ds = cycle()
    bpr = get_model("bpr")
    src = bpr(embedding_dim=4, epochs=2, batch_size=64).fit(ds, seed=0)
    src.save(tmp_path / "bpr")
    new_ds = _shuffled_plus_new(ds)
    warm = bpr(embedding_dim=4, batch_size=64, **FROZEN).fit(new_ds, seed=0, init_from=tmp_path / "bpr")
    assert warm.warm_start_.matched == {"user": 40, "item": 12}
    u_old = src.score(["u5"], ["i1", "i7"])
    u_new = warm.score(["u5"], ["i1", "i7"])
    np.testing.assert_allclose(u_old, u_new, atol=1e-5)


def test_incremental_retrain_warm_starts_from_the_served_version(tmp_path):
    from fusionrec.serving.events import EventStore
    from fusionrec.serving.retrain import retrain

    ds = cycle()
    served = get_model("bpr")(embedding_dim=4, epochs=3, batch_size=64).fit(ds, seed=0)
    served.save(tmp_path / "v1")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    store.add("u0", "i5", "click")
    store.add("brand-new", "i3", "click")
    store.dispose()
    model, folded, n = retrain(url, tmp_path / "v1", ds, tmp_path / "v2", warm_start=True, warm_epochs=1)
    assert n == 2 and model.config.epochs == 1
    assert model.warm_start_.matched == {"user": 40, "item": 12}
    assert model.warm_start_.new == {"user": 1, "item": 0}
    cold = retrain(url, tmp_path / "v1", ds, tmp_path / "v3", warm_start=False)[0]
    assert cold.warm_start_ is None
    assert cold.config.epochs == 3
