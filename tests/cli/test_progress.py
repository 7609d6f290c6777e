"""The progress lines of long commands (issue 17 item 12): what is fitted, time per epoch, the
most time left."""

from __future__ import annotations

import pytest

from fusionrec.experiment import progress as prog
from fusionrec.experiment.config import ExperimentConfig, ModelSpec
from fusionrec.experiment.progress import EpochProgress, epoch_budget, format_duration


def test_format_duration():
    assert [format_duration(s) for s in (0, 40.4, 89, 90, 360, 5399, 5400, 9000)] == [
        "0 s", "40 s", "89 s", "2 min", "6 min", "90 min", "1.5 h", "2.5 h",
    ]  # fmt: skip


def test_epoch_budget_reads_params_then_the_model_default():
    assert epoch_budget(ExperimentConfig(model=ModelSpec(name="bpr", params={"epochs": 7}))) == 7
    from fusionrec.models.classic.bpr import BPRConfig

    assert epoch_budget(ExperimentConfig(model=ModelSpec(name="bpr"))) == BPRConfig.model_fields["epochs"].default
    assert epoch_budget(ExperimentConfig(model=ModelSpec(name="ease"))) is None  # not trained by epochs


def test_epoch_progress_lines(monkeypatch):
    clock = iter([100.0, 112.0, 124.0, 136.0])  # start, then 12 s per epoch
    monkeypatch.setattr(prog.time, "perf_counter", lambda: next(clock))
    lines: list[str] = []
    p = EpochProgress(lines.append, every=2)  # reads the clock once (start)
    p.start("sasrec", 4)  # reads it again: t0 = 112
    p(1, {"valid_ndcg@10": 0.1})  # not reported (every 2)
    p(2, {"loss": 1.0, "valid_ndcg@10": 0.12345})  # 124 - 112 = 12 s over 2 epochs
    assert lines == ["sasrec: epoch 2/4 · 6.0 s/epoch · ndcg@10 0.1235 · at most 12 s left (early stopping may end sooner)"]
    p(4, {"loss": 0.5})  # last epoch: no time left, no metric in the record
    assert lines[-1] == "sasrec: epoch 4/4 · 6.0 s/epoch"


@pytest.mark.parametrize("every", [0, -3])
def test_every_is_at_least_one(every):
    lines: list[str] = []
    p = EpochProgress(lines.append, every=every)
    p.start("m", None)
    p(1, {})
    assert len(lines) == 1 and lines[0].startswith("m: epoch 1 · ")
