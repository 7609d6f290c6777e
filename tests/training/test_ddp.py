"""Data-parallel training: batch sharding, launcher arguments, and ``fusionrec train --nproc 2``
(2 gloo processes on 127.0.0.1) ending with the weights and metrics of a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.cli.main import main
from fusionrec.data import Dataset
from fusionrec.models.base import load_model
from fusionrec.training.distributed import context, shard_batch, torchrun_args


def test_shard_batch_cuts_contiguous_slices_with_weights() -> None:
    batch = {"user": torch.arange(5), "pos": np.arange(5) + 10, "table": torch.zeros(7, 2), "t": 0.5}
    a, wa = shard_batch(batch, 0, 2)
    b, wb = shard_batch(batch, 1, 2)
    assert a["user"].tolist() == [0, 1, 2] and b["user"].tolist() == [3, 4]
    assert a["pos"].tolist() == [10, 11, 12] and b["pos"].tolist() == [13, 14]
    assert a["table"].shape == (7, 2) and a["t"] == 0.5  # not per-sample: every rank gets it
    assert (wa, wb) == pytest.approx((1.2, 0.8))  # 2 * 3/5, 2 * 2/5: the ranks' mean is the global mean
    # fewer samples than ranks: the empty rank trains on sample 0 with weight 0
    small = {"user": torch.arange(2), "n_samples": 2}
    parts = [shard_batch(small, r, 3) for r in range(3)]
    assert [p[0]["user"].tolist() for p in parts] == [[0], [1], [0]]
    assert [p[1] for p in parts] == pytest.approx([1.5, 1.5, 0.0])
    assert [p[0]["n_samples"] for p in parts] == [1, 1, 1]
    with pytest.raises(ValueError, match="rank 2"):
        shard_batch(batch, 2, 2)
    with pytest.raises(ValueError, match="leading sample dimension"):
        shard_batch({"t": 0.5}, 0, 2)


def test_torchrun_args() -> None:
    assert torchrun_args(2) == ["--nproc-per-node=2", "--standalone"]
    multi = torchrun_args(4, nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29400")
    assert multi == [
        "--nproc-per-node=4", "--nnodes=2", "--node-rank=1", "--rdzv-backend=c10d",
        "--rdzv-endpoint=10.0.0.1:29400", "--rdzv-id=fusionrec",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="rdzv-endpoint"):
        torchrun_args(2, nnodes=2)
    with pytest.raises(ValueError, match="node-rank 2"):
        torchrun_args(2, nnodes=2, node_rank=2, rdzv_endpoint="h:1")


def test_no_process_group_means_one_process() -> None:
    assert context() is None


@pytest.fixture
def bpr_config(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        items = rng.choice(np.arange(20) + 20 * (u % 2), size=10, replace=False)
        rows += [(f"u{u}", f"i{i}", 4.0, float(100 * u + j)) for j, i in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    Dataset.from_frames(df, name="small").save(tmp_path / "ds")
    cfg = tmp_path / "bpr.yaml"
    # batch 75 over ~480 training rows: shards of 38 and 37 samples (uneven), a short last batch
    cfg.write_text(
        f"data: {{name: '{tmp_path / 'ds'}'}}\n"
        "model: {name: bpr, params: {embedding_dim: 8}}\n"
        "train: {epochs: 4, batch_size: 75, lr: 0.01, eval_every: 1, patience: 0}\n"
    )
    return cfg


def test_two_gloo_processes_train_like_one(bpr_config: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "-c", str(bpr_config), "--run-dir", str(one)]) == 0
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "fusionrec.cli.main", "train", "-c", str(bpr_config), "--run-dir", str(two), "--nproc", "2"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 processes" in proc.stdout  # rank 0 reports, and says how many ranks trained
    a, b = load_model(one / "models" / "bpr"), load_model(two / "models" / "bpr")
    for name, w in a.module_.state_dict().items():
        torch.testing.assert_close(b.module_.state_dict()[name], w, atol=1e-5, rtol=1e-4)
    log1, log2 = pd.read_csv(one / "training" / "log.csv"), pd.read_csv(two / "training" / "log.csv")
    assert len(log1) == len(log2) == 4
    np.testing.assert_allclose(log2["loss"], log1["loss"], rtol=1e-5)  # losses averaged over ranks
    np.testing.assert_allclose(log2["valid_ndcg@10"], log1["valid_ndcg@10"], atol=1e-6)
    m1 = json.loads((one / "metrics.json").read_text())["metrics"]
    m2 = json.loads((two / "metrics.json").read_text())["metrics"]
    assert m2 == pytest.approx(m1, abs=1e-6)
