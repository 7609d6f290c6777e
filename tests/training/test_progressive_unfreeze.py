"""Progressive unfreezing through config and ``TorchRecommender.fit``: the Trainer's
on-train-begin hook, parameters frozen before their epoch and trained from it, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.data import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.sequential.sasrec import SASRec
from fusionrec.training.curriculum import ProgressiveUnfreezing as FromCurriculum
from fusionrec.training.unfreeze import ProgressiveUnfreezing

SMALL = dict(
    embedding_dim=16,
    n_heads=2,
    n_layers=1,
    ffn_dim=32,
    max_len=5,
    batch_size=8,
    device="cpu",
    patience=0,
    lr=1e-2,
)


def _seqs(n_users: int = 12, n_items: int = 8, length: int = 6) -> Dataset:
    rows = [
        (f"u{u}", f"i{(u + t) % n_items}", float(t)) for u in range(n_users) for t in range(length)
    ]
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


class _Snapshots:
    """Records the named parameters at train begin and after every epoch."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes
        self.begin: dict[str, torch.Tensor] = {}
        self.after: list[dict[str, torch.Tensor]] = []
        self.starts: list[int] = []

    def _take(self) -> dict[str, torch.Tensor]:
        return {
            n: p.detach().clone()
            for n, p in self.module.named_parameters()
            if n.startswith(self.prefixes)
        }

    def on_train_begin(self, model, start_epoch: int) -> None:
        self.module = model.module_
        self.starts.append(start_epoch)
        self.begin = self._take()

    def __call__(self, epoch: int, record: dict) -> None:
        self.after.append(self._take())


def _same(a: dict, b: dict, prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_config_schedule_freezes_the_encoder_until_its_epoch(optimizer):
    snap = _Snapshots(("encoder", "item_emb"))
    m = SASRec(
        **SMALL,
        epochs=4,
        optimizer=optimizer,
        weight_decay=0.1 if optimizer == "adamw" else 0.0,
        progressive_unfreeze={3: ["encoder"]},
    )
    m.fit(_seqs(), seed=0, callbacks=[snap])
    assert snap.starts == [1]
    begin, after = snap.begin, snap.after
    assert len(after) == 4
    # encoder frozen in epochs 1 and 2 (not even weight decay moves it), trains from epoch 3
    assert _same(begin, after[0], "encoder") and _same(begin, after[1], "encoder")
    assert not _same(after[1], after[2], "encoder") and not _same(after[2], after[3], "encoder")
    # the item embeddings train from the start
    assert not _same(begin, after[0], "item_emb")


def test_unfreezing_one_block_then_all():
    snap = _Snapshots(("encoder",))
    SASRec(
        **{**SMALL, "n_layers": 2},
        epochs=3,
        progressive_unfreeze={2: ["encoder.blocks.1"], 3: ["encoder"]},
    ).fit(_seqs(), seed=0, callbacks=[snap])
    b, a = snap.begin, snap.after
    assert _same(b, a[0], "encoder.blocks.0") and _same(b, a[0], "encoder.blocks.1")
    assert not _same(a[0], a[1], "encoder.blocks.1") and _same(a[0], a[1], "encoder.blocks.0")
    assert not _same(a[1], a[2], "encoder.blocks.0") and not _same(a[1], a[2], "encoder.ln")


def test_resume_starts_with_the_groups_due_by_then(tmp_path):
    params = dict(**SMALL, epochs=4, progressive_unfreeze={3: ["encoder"]})

    def crash(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SASRec(**params).fit(_seqs(), seed=0, run_dir=tmp_path, callbacks=[crash])
    snap = _Snapshots(("encoder",))
    resumed = SASRec(**params).fit(_seqs(), seed=0, run_dir=tmp_path, resume=True, callbacks=[snap])
    assert snap.starts == [3] and len(snap.after) == 2
    assert not _same(snap.begin, snap.after[0], "encoder")  # due at epoch 3: trains at once
    full = SASRec(**params).fit(_seqs(), seed=0)
    np.testing.assert_allclose(
        resumed.score_indices(np.arange(12)), full.score_indices(np.arange(12)), atol=1e-6
    )


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="progressive_unfreeze epochs must be >= 1"):
        SASRec(**SMALL, progressive_unfreeze={0: ["encoder"]})
    with pytest.raises(ConfigError, match="names no parameters"):
        SASRec(**SMALL, progressive_unfreeze={2: []})
    with pytest.raises(ConfigError, match=r"no parameter matches \['encodr'\].*item_emb"):
        SASRec(**SMALL, epochs=2, progressive_unfreeze={2: ["encodr"]}).fit(_seqs(), seed=0)
    with pytest.raises(ConfigError, match="list of parameter-name prefixes"):
        ProgressiveUnfreezing({2: "encoder"})
    assert FromCurriculum is ProgressiveUnfreezing


def test_trainer_calls_on_train_begin_once_before_the_first_epoch():
    calls = []

    class Hook:
        def on_train_begin(self, model, start):
            calls.append(("begin", start))

        def __call__(self, epoch, record):
            calls.append(("epoch", epoch))

    SASRec(**SMALL, epochs=2).fit(_seqs(), seed=0, callbacks=[Hook(), lambda e, r: None])
    assert calls == [("begin", 1), ("epoch", 1), ("epoch", 2)]


def test_lm_mf_encoder_top_layer_unfreezes_at_its_epoch():
    """lm_mf with top-1 encoder fine-tuning: the encoder's top layer is frozen in epoch 1 and
    trains in epoch 2 (names: ``bank.encoder.<encoder parameter>``)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
    from _lm_data import make_groups

    from fusionrec.models import get_model

    ds, _, _ = make_groups()
    seen: list[dict[str, torch.Tensor]] = []

    def top_layer(model) -> dict[str, torch.Tensor]:
        enc = model.module_.bank.encoder.module
        return {n: p.detach().clone() for n, p in enc.named_parameters() if p.requires_grad}

    m = get_model("lm_mf")(
        epochs=2,
        batch_size=32,
        encoder_finetune="top_n",
        encoder_top_n=1,
        live_items=4,
        encoder_lr=1e-3,
        device="cpu",
        patience=0,
        progressive_unfreeze={2: ["bank.encoder"]},
    )

    class Snap:
        def on_train_begin(self, model, start):
            seen.append(top_layer(model))

        def __call__(self, epoch, record):
            seen.append(top_layer(m))

    m.fit(ds, seed=0, callbacks=[Snap()])
    assert len(seen) == 3 and seen[0]
    assert all(torch.equal(seen[0][k], seen[1][k]) for k in seen[0])  # frozen in epoch 1
    assert any(not torch.equal(seen[1][k], seen[2][k]) for k in seen[0])  # trains in epoch 2
