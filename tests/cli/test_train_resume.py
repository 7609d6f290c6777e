"""``fusionrec train --run-dir DIR --resume``: an interrupted run, resumed, ends like an
uninterrupted one (the CLI path over the Trainer's checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.cli.main import main
from fusionrec.data import Dataset
from fusionrec.models import torch_base
from fusionrec.training.trainer import Trainer


class SimulatedCrash(RuntimeError):
    pass


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        items = rng.choice(np.arange(15) + 15 * (u % 2), size=8, replace=False)
        rows += [(f"u{u}", f"i{i}", 4.0, float(100 * u + j)) for j, i in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    ds_path = tmp_path / "small_ds"
    Dataset.from_frames(df, name="small").save(ds_path)
    cfg = tmp_path / "neumf.yaml"
    # dropout > 0: the resumed run must also restore torch's RNG; cosine: the schedule's position
    cfg.write_text(
        f"data: {{name: '{ds_path}'}}\n"
        "model: {name: neumf, params: {embedding_dim: 8, mlp_embedding_dim: 8, "
        "hidden_dims: [16, 8], dropout: 0.2, num_negatives: 2}}\n"
        "train: {epochs: 4, batch_size: 32, lr: 0.01, lr_schedule: cosine, patience: 0, "
        "eval_every: 1}\n"
    )
    return cfg


def _crash_after_epoch(monkeypatch: pytest.MonkeyPatch, stop_epoch: int) -> None:
    """Make every Trainer raise right after ``stop_epoch``'s checkpoint is written."""

    def stop(epoch: int, record: dict) -> None:
        if epoch == stop_epoch:
            raise SimulatedCrash(f"killed after epoch {epoch}")

    class CrashingTrainer(Trainer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.callbacks.append(stop)

    monkeypatch.setattr(torch_base, "Trainer", CrashingTrainer)


def _log(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "training" / "log.csv").drop(columns=["seconds", "samples_per_s"])


def test_interrupted_run_resumes_to_the_same_result(config_file: Path, tmp_path: Path, monkeypatch):
    full, broken = tmp_path / "full", tmp_path / "broken"
    assert main(["train", "--config", str(config_file), "--run-dir", str(full)]) == 0
    assert (full / "training" / "curve.png").stat().st_size > 0
    assert len(_log(full)) == 4

    with monkeypatch.context() as m:
        _crash_after_epoch(m, 2)
        with pytest.raises(SimulatedCrash):
            main(["train", "--config", str(config_file), "--run-dir", str(broken)])
    assert not (broken / "metrics.json").exists()
    assert list(_log(broken)["epoch"]) == [1, 2]

    assert main(["train", "--config", str(config_file), "--run-dir", str(broken), "--resume"]) == 0
    a = json.loads((full / "metrics.json").read_text())["metrics"]
    b = json.loads((broken / "metrics.json").read_text())["metrics"]
    assert a == b  # bit-for-bit the same weights, so exactly the same metrics
    pd.testing.assert_frame_equal(_log(full), _log(broken))

    # the run folder's own config.json is enough to resume (nothing left to train: same result)
    assert main(["train", "--run-dir", str(broken), "--resume"]) == 0
    assert json.loads((broken / "metrics.json").read_text())["metrics"] == a


def test_shorter_run_extended_by_resume(config_file: Path, tmp_path: Path, monkeypatch):
    """Train 2 epochs, then resume to 4 (constant lr: the schedule does not depend on epochs)."""
    monkeypatch.chdir(tmp_path)  # --resume without --run-dir looks under ./runs/
    const = ["--set", "train.lr_schedule=constant"]
    full = tmp_path / "full"
    assert main(["train", "--config", str(config_file), "--run-dir", str(full), *const]) == 0
    assert main(["train", "--config", str(config_file), *const, "--set", "train.epochs=2"]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
    assert list(_log(run)["epoch"]) == [1, 2]
    assert main(["train", "--config", str(config_file), *const, "--resume"]) == 0
    assert list((tmp_path / "runs").iterdir()) == [run]  # resumed in place, no new folder
    a = json.loads((full / "metrics.json").read_text())["metrics"]
    b = json.loads((run / "metrics.json").read_text())["metrics"]
    assert a == b
    assert list(_log(run)["epoch"]) == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(_log(full), _log(run))


def test_resume_errors(config_file: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(config_file), "--resume"]) == 1
    assert "no run folder under ./runs/ holds a checkpoint of 'neumf'" in capsys.readouterr().err
    assert main(["train", "--resume", "--run-dir", str(tmp_path / "nope")]) == 1
    assert "has no config.json" in capsys.readouterr().err
    assert main(["train", "--resume"]) == 1
    assert "--config is required" in capsys.readouterr().err
    ease = tmp_path / "ease.yaml"
    ease.write_text(config_file.read_text().split("model:")[0] + "model: {name: ease}\n")
    assert main(["train", "--config", str(ease), "--run-dir", str(tmp_path / "e"), "--resume"]) == 1
    assert f"run folder {tmp_path / 'e'} does not exist" in capsys.readouterr().err
    (tmp_path / "e").mkdir()
    assert main(["train", "--config", str(ease), "--run-dir", str(tmp_path / "e"), "--resume"]) == 1
    assert "cannot resume model 'ease': it is not trained by epochs" in capsys.readouterr().err


def test_resume_refuses_a_run_trained_with_another_config(config_file: Path, tmp_path: Path, monkeypatch, capsys):
    """Issue 17 item 11: --resume continued the newest run whatever its config and then
    overwrote that run's config.json. Only a run whose config matches may be continued."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(config_file), "--set", "train.epochs=2"]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
    before = (run / "config.json").read_bytes()
    capsys.readouterr()

    other = ["--config", str(config_file), "--set", "train.lr_schedule=constant", "--set", "train.lr=0.02"]
    assert main(["train", *other, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "none of the 1 run folder(s) with a checkpoint of 'neumf'" in err
    assert 'model.params.lr: 0.01 -> 0.02' in err and 'model.params.lr_schedule: "cosine" -> "constant"' in err
    assert main(["train", *other, "--run-dir", str(run), "--resume"]) == 1
    assert f"cannot resume {run}: its config.json describes another experiment" in capsys.readouterr().err
    assert main(["train", *other, "--run-dir", str(run)]) == 1  # a fresh run into it: refused too
    assert f"cannot train into {run}" in capsys.readouterr().err
    assert (run / "config.json").read_bytes() == before  # never overwritten
    assert list(_log(run)["epoch"]) == [1, 2]  # and its weights were not touched

    # run settings and a larger epoch budget are the same experiment: resumed in place
    same = ["--config", str(config_file), "--set", "train.epochs=3", "--set", "run.device=cpu"]
    assert main(["train", *same, "--resume", "--threads", "1"]) == 0
    assert list(_log(run)["epoch"]) == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3
