"""Model-parallel embedding tables through TorchRec (optional extra ``torchrec``).

A BPR-style model whose user and item tables are a TorchRec ``EmbeddingBagCollection``,
sharded across the ranks of a gloo (CPU) or NCCL process group by
``DistributedModelParallel``: ``table_wise`` puts each whole table on one rank;
``column_wise`` splits every table's embedding columns across all ranks and ``row_wise`` its
rows (both hold a table larger than one process's memory). TorchRec 1.8 offers ``row_wise``
only on CUDA (its CPU sharder lists table-, column- and table-column-wise); on CPU it is
refused with that reason and ``column_wise`` is the split-table option.
Each rank feeds its slice of every global batch; TorchRec's all-to-all brings each looked-up
row to the rank that needs it, and the optimiser (fused into the backward pass, FBGEMM's
kernels) updates the rows where they live.

    user, item = train_sharded_bpr(user_idx, item_idx, n_users, n_items, sharding="column_wise")

runs ``world_size`` processes (127.0.0.1, gloo) and returns the trained tables gathered
from the shards; ``train_dense_bpr`` trains the same model in one process with the same
optimiser family (dense Adagrad) for comparison. Install: ``pip install --no-deps
torchrec==1.8.0 fbgemm-gpu-cpu==1.8.0`` and the pure-Python packages its import asks for
(docs/scale.md); without it, importing this module works and calling it raises ImportError.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["train_sharded_bpr", "train_dense_bpr", "torchrec_available"]

Sharding = Literal["table_wise", "column_wise", "row_wise"]
_TYPES = ("table_wise", "column_wise", "row_wise")


def torchrec_available() -> bool:
    try:
        import torchrec  # noqa: F401
    except Exception:
        return False
    return True


def _ebc(n_users: int, n_items: int, dim: int, device: torch.device):
    from torchrec import EmbeddingBagCollection, EmbeddingBagConfig, PoolingType

    tables = [
        EmbeddingBagConfig(name="user", embedding_dim=dim, num_embeddings=n_users, feature_names=["user"], pooling=PoolingType.SUM),
        EmbeddingBagConfig(name="item", embedding_dim=dim, num_embeddings=n_items, feature_names=["pos", "neg"], pooling=PoolingType.SUM),
    ]
    return EmbeddingBagCollection(tables=tables, device=device)


def _kjt(users: np.ndarray, pos: np.ndarray, neg: np.ndarray):
    from torchrec import KeyedJaggedTensor

    n = len(users)
    return KeyedJaggedTensor.from_lengths_sync(
        keys=["user", "pos", "neg"],
        values=torch.from_numpy(np.concatenate([users, pos, neg]).astype(np.int64)),
        lengths=torch.ones(3 * n, dtype=torch.int32),
    )


def _bpr_loss(ebc, kjt) -> torch.Tensor:
    out = ebc(kjt)
    u, p, n = out["user"], out["pos"], out["neg"]
    return -F.logsigmoid((u * p).sum(-1) - (u * n).sum(-1)).mean()


def _epoch_batches(user_idx, item_idx, n_items, batch_size, rng):
    order = rng.permutation(len(user_idx))
    neg = rng.integers(0, n_items, len(order))
    for s in range(0, len(order), batch_size):
        sel = order[s : s + batch_size]
        yield user_idx[sel], item_idx[sel], neg[s : s + batch_size]


def train_dense_bpr(user_idx, item_idx, n_users, n_items, *, dim=64, epochs=10, batch_size=4096, lr=0.1, seed=0):
    """The same model trained in one process with dense tables (torch Adagrad): the reference."""
    ebc = _ebc(n_users, n_items, dim, torch.device("cpu"))
    init = _initial_tables(n_users, n_items, dim, seed)
    with torch.no_grad():
        for t in ("user", "item"):
            ebc.embedding_bags[t].weight.copy_(init[t])
    opt = torch.optim.Adagrad(ebc.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for u, p, n in _epoch_batches(user_idx, item_idx, n_items, batch_size, rng):
            opt.zero_grad()
            _bpr_loss(ebc, _kjt(u, p, n)).backward()
            opt.step()
    return ebc.embedding_bags["user"].weight.detach().numpy().copy(), ebc.embedding_bags["item"].weight.detach().numpy().copy()


def _initial_tables(n_users: int, n_items: int, dim: int, seed: int) -> dict[str, torch.Tensor]:
    """N(0, 0.1²) tables from ``seed``: the sharded and the dense run start from the same weights."""
    gen = torch.Generator().manual_seed(seed)
    return {"user": torch.randn(n_users, dim, generator=gen) * 0.1, "item": torch.randn(n_items, dim, generator=gen) * 0.1}


def _worker(rank: int, world: int, port: int, out_dir: str, arrays: dict, kw: dict) -> None:
    import torch.distributed as dist
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.planner import (
        EmbeddingShardingPlanner,
        ParameterConstraints,
        Topology,
    )
    from torchrec.distributed.types import ShardingEnv, ShardingType
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        # a fork of the global generator, seeded here: even in this spawned rank process the
        # library leaves the global RNG state as it found it
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(kw["seed"])
            dev = torch.device("cpu")
            ebc = _ebc(arrays["n_users"], arrays["n_items"], kw["dim"], torch.device("meta"))
            apply_optimizer_in_backward(torch.optim.Adagrad, ebc.parameters(), {"lr": kw["lr"]})
            st = {"table_wise": ShardingType.TABLE_WISE, "column_wise": ShardingType.COLUMN_WISE, "row_wise": ShardingType.ROW_WISE}[kw["sharding"]].value
            # column_wise: one column block per rank (the planner's default block is wider than small tables)
            part = {"min_partition": kw["dim"] // world} if kw["sharding"] == "column_wise" else {}
            constraints = {t: ParameterConstraints(sharding_types=[st], **part) for t in ("user", "item")}
            sharders = [EmbeddingBagCollectionSharder()]
            planner = EmbeddingShardingPlanner(topology=Topology(world_size=world, compute_device="cpu"), constraints=constraints)
            plan = planner.collective_plan(ebc, sharders, dist.GroupMember.WORLD)
            model = DistributedModelParallel(ebc, env=ShardingEnv.from_process_group(dist.GroupMember.WORLD), device=dev, plan=plan, sharders=sharders)
            with torch.no_grad():  # the reference's initialisation (every rank draws the same full table)
                full = _initial_tables(arrays["n_users"], arrays["n_items"], kw["dim"], kw["seed"])
                for key, st_ in model.state_dict().items():
                    table = "user" if ".user." in key else "item"
                    for shard in st_.local_shards():
                        o = shard.metadata.shard_offsets
                        sz = shard.metadata.shard_sizes
                        shard.tensor.copy_(full[table][o[0] : o[0] + sz[0], o[1] : o[1] + sz[1]])
            rng = np.random.default_rng(kw["seed"])
            u_all, i_all = arrays["user_idx"], arrays["item_idx"]
            placement = {}
            for _ in range(kw["epochs"]):
                for u, p, n in _epoch_batches(u_all, i_all, arrays["n_items"], kw["batch_size"], rng):
                    base, extra = divmod(len(u), world)
                    lo, size = rank * base + min(rank, extra), base + (rank < extra)
                    loss = _bpr_loss(model, _kjt(u[lo : lo + size], p[lo : lo + size], n[lo : lo + size]))
                    (loss * world * size / len(u)).backward()  # the fused optimiser steps in backward
            for key, st_ in model.state_dict().items():
                table = "user" if ".user." in key else "item"
                out = torch.zeros(st_.size()) if rank == 0 else None
                st_.gather(dst=0, out=out)
                placement[table] = [s.placement.rank() for s in st_.metadata().shards_metadata]
                if rank == 0:
                    np.save(Path(out_dir) / f"{table}.npy", out.numpy(), allow_pickle=False)
            if rank == 0:
                (Path(out_dir) / "placement.txt").write_text(repr(placement))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_sharded_bpr(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    n_users: int,
    n_items: int,
    *,
    sharding: Sharding = "table_wise",
    world_size: int = 2,
    dim: int = 64,
    epochs: int = 10,
    batch_size: int = 4096,
    lr: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, list[int]]]:
    """Train on ``world_size`` gloo processes with the tables sharded ``sharding``; returns the
    gathered user and item tables and, per table, the rank of each of its shards."""
    if not torchrec_available():
        raise ImportError("model-parallel tables need the torchrec extra (docs/scale.md: pip install --no-deps torchrec==1.8.0 fbgemm-gpu-cpu==1.8.0 ...)")
    if sharding not in _TYPES:
        raise ValueError(f"sharding must be one of {', '.join(_TYPES)}, got {sharding!r}")
    if sharding == "row_wise":  # the CPU (gloo) path: torchrec 1.8's CPU sharder has no row-wise
        raise ValueError("row_wise sharding needs CUDA ranks in torchrec 1.8 (its CPU sharder offers table_wise and column_wise); use column_wise to split each table on CPU")
    import ast

    import torch.multiprocessing as mp

    arrays = {"user_idx": np.asarray(user_idx, np.int64), "item_idx": np.asarray(item_idx, np.int64), "n_users": int(n_users), "n_items": int(n_items)}
    kw = {"sharding": sharding, "dim": dim, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(_worker, args=(world_size, _free_port(), out, arrays, kw), nprocs=world_size, start_method="spawn")
        placement = ast.literal_eval((Path(out) / "placement.txt").read_text())
        return np.load(Path(out) / "user.npy"), np.load(Path(out) / "item.npy"), placement
