"""The shared Trainer's core loop: early stopping with restore of the best weights, patience,
history records, named-loss logging, eval cadence, callbacks, non-finite losses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.data import Dataset
from fusionrec.training import TrainConfig, Trainer


class _Counter(torch.nn.Module):
    """One parameter p; loss = p (or named parts) so one SGD step with lr=1 lowers p by 1."""

    def __init__(self, named: bool = False, blow_up_at: float | None = None) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.named = named
        self.blow_up_at = blow_up_at

    def loss(self, batch):
        if self.blow_up_at is not None and float(self.p.detach()) <= self.blow_up_at:
            return self.p.sum() * float("nan")
        if self.named:
            return {"main": 0.75 * self.p.sum(), "aux": 0.25 * self.p.sum()}
        return self.p.sum()


class _Scripted:
    """A Trainable whose validation ranking quality is scripted per epoch (epoch = -p)."""

    name = "scripted"

    def __init__(
        self, config: TrainConfig, ranks: dict[int, int], module: _Counter | None = None
    ) -> None:
        self.config = config
        self.module_ = module or _Counter()
        self.ranks = ranks  # epoch -> rank of the valid item (1..3)
        self.epochs_seen: list[int] = []

    def batches(self, dataset, rng):
        yield {"x": torch.zeros(1)}

    def score_indices(self, user_idx, item_idx=None):
        epoch = int(round(-float(self.module_.p.detach())))
        self.epochs_seen.append(epoch)
        rank = self.ranks.get(epoch, 3)
        # items: v (valid positive), o1, o2, t (train item, masked); place v at `rank` among v, o1, o2
        order = {1: [3.0, 2.0, 1.0], 2: [2.0, 3.0, 1.0], 3: [1.0, 3.0, 2.0]}[rank]
        s = np.array([[*order, 99.0]], dtype=np.float32)
        return np.repeat(s, len(np.atleast_1d(user_idx)), axis=0)


def _data() -> tuple[Dataset, Dataset]:
    df = pd.DataFrame({"user_id": ["u", "u", "w"], "item_id": ["v", "t", "o1"]})
    items = pd.DataFrame({"item_id": ["v", "o1", "o2", "t"]})
    ds = Dataset.from_frames(df, items=items)
    return ds.with_interactions(np.array([1, 2])), ds.with_interactions(np.array([0]))


def _cfg(**kw) -> TrainConfig:
    base = {"epochs": 10, "lr": 1.0, "optimizer": "sgd", "patience": 2, "device": "cpu"}
    return TrainConfig(**(base | kw))


def _fixed_scores(model: _Scripted, ds: Dataset) -> None:
    """Map the scripted columns (v, o1, o2, t) onto the dataset's item indices."""
    cols = ds.items.to_idx(["v", "o1", "o2", "t"])
    inner = model.score_indices

    def score_indices(user_idx, item_idx=None):
        s = inner(user_idx)
        out = np.empty_like(s)
        out[:, cols] = s
        return out

    model.score_indices = score_indices


def _run(cfg: TrainConfig, ranks: dict[int, int], module: _Counter | None = None):
    train, valid = _data()
    model = _Scripted(cfg, ranks, module)
    _fixed_scores(model, train)
    calls: list[tuple[int, dict]] = []
    hist = Trainer(cfg, callbacks=[lambda e, r: calls.append((e, dict(r)))]).fit(
        model, train, valid, seed=0
    )
    return model, hist, calls


def test_early_stopping_restores_best_epoch_weights() -> None:
    # ndcg by epoch: 1 -> rank 3 (0.5), 2 -> rank 1 (1.0), then rank 2 (0.63) forever
    model, hist, _ = _run(_cfg(patience=2), {1: 3, 2: 1, 3: 2, 4: 2, 5: 2})
    assert hist.best_epoch == 2
    assert hist.best_metric == pytest.approx(1.0)
    assert hist.stopped_early
    assert [r["epoch"] for r in hist.records] == [1, 2, 3, 4]  # two evaluations without improvement
    assert float(model.module_.p.detach()) == pytest.approx(-2.0)  # weights of epoch 2, not epoch 4
    vals = [r["valid_ndcg@10"] for r in hist.records]
    np.testing.assert_allclose(vals, [0.5, 1.0, 1 / np.log2(3), 1 / np.log2(3)])


def test_patience_counts_evaluations_without_improvement() -> None:
    _, hist, _ = _run(_cfg(patience=4), {1: 1})
    assert len(hist.records) == 5 and hist.stopped_early and hist.best_epoch == 1
    # an equal value is not an improvement; a later better one resets the count
    _, hist2, _ = _run(_cfg(patience=2), {1: 2, 2: 2, 3: 2, 4: 1})
    assert hist2.best_epoch == 1 and len(hist2.records) == 3
    _, hist3, _ = _run(_cfg(patience=2), {1: 3, 2: 3, 3: 1})
    assert hist3.best_epoch == 3 and len(hist3.records) == 5


def test_patience_zero_runs_all_epochs_but_still_restores_best() -> None:
    model, hist, _ = _run(_cfg(patience=0, epochs=6), {3: 1})
    assert len(hist.records) == 6 and not hist.stopped_early
    assert hist.best_epoch == 3
    assert float(model.module_.p.detach()) == pytest.approx(-3.0)


def test_eval_every_and_last_epoch() -> None:
    model, hist, _ = _run(_cfg(patience=0, epochs=5, eval_every=2), {4: 1})
    evaluated = [r["epoch"] for r in hist.records if "valid_ndcg@10" in r]
    assert evaluated == [2, 4, 5]
    assert model.epochs_seen == [2, 4, 5]
    assert hist.best_epoch == 4


def test_history_records_losses_seconds_and_callbacks() -> None:
    _, hist, calls = _run(_cfg(patience=0, epochs=3), {}, module=_Counter(named=True))
    rec = hist.records[0]
    # epoch 1 starts at p = 0: main = 0, aux = 0 ; epoch 2 at p = -1: main = -0.75, aux = -0.25
    assert rec["loss"] == pytest.approx(0.0)
    r2 = hist.records[1]
    assert r2["loss_main"] == pytest.approx(-0.75) and r2["loss_aux"] == pytest.approx(-0.25)
    assert r2["loss"] == pytest.approx(-1.0)
    assert all(r["seconds"] >= 0 for r in hist.records)
    assert [e for e, _ in calls] == [1, 2, 3]
    assert calls[1][1]["loss"] == pytest.approx(-1.0)
    frame = hist.as_frame()
    assert list(frame["epoch"]) == [1, 2, 3]


def test_without_valid_there_is_no_early_stopping() -> None:
    train, _ = _data()
    model = _Scripted(_cfg(epochs=4, patience=1), {})
    hist = Trainer(model.config).fit(model, train, None, seed=0)
    assert len(hist.records) == 4 and hist.best_epoch is None and not hist.stopped_early
    assert float(model.module_.p.detach()) == pytest.approx(-4.0)


def test_non_finite_loss_raises() -> None:
    with pytest.raises(FloatingPointError, match="epoch 3"):
        _run(_cfg(patience=0, epochs=5), {}, module=_Counter(blow_up_at=-2.0))
