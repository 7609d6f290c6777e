"""Multi-task: configurable heads (click, like, item:<field>) and PLE's gates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import load_model
from fusionrec.models.composite.multitask import MultiTask
from fusionrec.testing import toy_dataset

FAST = {"epochs": 40, "batch_size": 128, "lr": 0.03, "patience": 0, "embedding_dim": 8,
        "hidden_dims": (16,), "tower_dim": 8, "weight_decay": 0.0}


def _planted() -> Dataset:
    """toy interactions; item feature 'flag' = 'odd'/'even' by item index, ratings 5 on even
    items and 1 on odd ones (so 'like' = rating >= 4 is the item's parity)."""
    ds = toy_dataset(n_users=30, n_items=16, seed=2)
    inter = ds.interactions_frame()
    idx = ds.items.to_idx(inter["item_id"].to_numpy(dtype=object))
    inter["rating"] = np.where(idx % 2 == 0, 5.0, 1.0)
    items = pd.DataFrame({"item_id": ds.items.ids,
                          "flag": ["even" if i % 2 == 0 else "odd" for i in range(ds.n_items)]})
    return Dataset.from_frames(inter, items=items, item_feature_types={"flag": "token"})


def test_ple_gate_shapes_and_planted_item_label(tmp_path):
    ds = _planted()
    m = MultiTask(tasks=("click", "like", "item:flag"), architecture="ple", n_experts=3,
                  n_task_experts=2, **FAST).fit(ds, seed=0)
    mod = m.module_.eval()
    u = torch.arange(5)
    i = torch.arange(5)
    gates = mod.gate_weights(u, i)
    assert set(gates) == {"click", "like", "item:flag"}
    for g in gates.values():
        assert g.shape == (5, 3 + 2)  # 3 shared experts, then the task's own 2
        torch.testing.assert_close(g.sum(1), torch.ones(5))
    assert len(mod.task_experts["item_flag"]) == 2
    # the planted item label: the 'flag' head tells even from odd items ('even' < 'odd')
    users = torch.as_tensor(np.array(ds.user_idx, np.int64))
    items = torch.as_tensor(np.array(ds.item_idx, np.int64))
    with torch.no_grad():
        out = mod.heads(users, items, ["item:flag", "like"])
    pred_odd = (out["item:flag"][:, 1] > out["item:flag"][:, 0]).numpy()
    assert np.mean(pred_odd == (ds.item_idx % 2 == 1)) > 0.95
    liked = (out["like"].squeeze(-1) > 0).numpy()
    assert np.mean(liked == (ds.item_idx % 2 == 0)) > 0.95
    back = load_model(m.save(tmp_path / "mt"))
    np.testing.assert_allclose(back.score_indices(np.arange(4)), m.score_indices(np.arange(4)),
                               rtol=1e-5)


def test_click_head_ranks_seen_above_unseen():
    ds = toy_dataset(n_users=30, n_items=16, seed=3)
    m = MultiTask(tasks=("click",), architecture="mmoe", **FAST).fit(ds, seed=0)
    s = m.score_indices(np.arange(ds.n_users))
    seen = ds.matrix("csr").toarray() > 0
    assert s[seen].mean() > s[~seen].mean() + 1.0


def test_bad_tasks_are_named():
    with pytest.raises(ConfigError, match="unknown tasks"):
        MultiTask(tasks=("ranking", "ctr"))
    ds = toy_dataset(n_users=10, n_items=8, seed=0)
    with pytest.raises(ConfigError, match="needs item feature 'mood'"):
        MultiTask(tasks=("ranking", "item:mood"), epochs=1).fit(ds)
    with pytest.raises(ConfigError, match="'like' needs ratings"):
        bare = Dataset.from_frames(ds.interactions_frame().drop(columns=["rating"]))
        MultiTask(tasks=("like",), epochs=1).fit(bare)
    with pytest.raises(ConfigError, match="no gates"):
        MultiTask(tasks=("ranking",), architecture="shared_bottom", epochs=1).fit(
            ds, seed=0).module_.gate_weights(torch.arange(2), torch.arange(2))
