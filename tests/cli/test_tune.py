"""Hyper-parameter search: library ``tune`` and ``fusionrec tune`` on tiny data (sqlite in tmp)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("optuna")

from fusionrec.cli.main import main  # noqa: E402
from fusionrec.data import Dataset  # noqa: E402
from fusionrec.errors import ConfigError  # noqa: E402
from fusionrec.experiment.config import load_config  # noqa: E402
from fusionrec.experiment.tuning import set_path, tune  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _groups() -> Dataset:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        g = u % 2
        for j, i in enumerate(rng.choice(np.arange(15) + 15 * g, size=8, replace=False)):
            rows.append((f"u{u}", f"i{i}", 4.0, float(100 * u + j)))
    return Dataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]), name="groups"
    )


BASE = {
    "data": {"name": "groups", "protocol": "rs", "ratios": [0.8, 0.1, 0.1]},
    "model": {"name": "lightgcn", "params": {"embedding_dim": 8, "batch_size": 64}},
    "train": {"epochs": 3},
    "seed": 1,
}
SPACE = {
    "model.params.lr": {"type": "float", "low": 1e-3, "high": 5e-2, "log": True},
    "model.params.n_layers": {"type": "categorical", "choices": [1, 2]},
}


def test_set_path_creates_sections():
    d = {"model": {"name": "x"}}
    set_path(d, "model.params.lr", 0.1)
    set_path(d, "train.epochs", 3)
    assert d == {"model": {"name": "x", "params": {"lr": 0.1}}, "train": {"epochs": 3}}


def test_tune_runs_trials_and_writes_outputs(tmp_path: Path):
    res = tune(BASE, SPACE, n_trials=3, output_dir=tmp_path, dataset=_groups())
    assert (tmp_path / "tune.db").is_file()
    assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert len(trials) == 3
    done = trials[trials["state"] == "COMPLETE"]
    assert res.best_value == pytest.approx(done["value"].max())
    best = yaml.safe_load((tmp_path / "best_config.yaml").read_text())
    assert best["model"]["params"]["lr"] == res.best_params["model.params.lr"]
    assert best["model"]["params"]["n_layers"] in (1, 2)
    assert best["model"]["params"]["embedding_dim"] == 8  # base values kept
    # a second call continues the same study in the same database
    res2 = tune(BASE, SPACE, n_trials=1, output_dir=tmp_path, dataset=_groups())
    assert len(res2.study.trials) == 4


def test_median_pruner_stops_worse_trials(tmp_path: Path):
    def objective(cfg, report):
        lr = cfg["model"]["params"]["lr"]
        for epoch in range(1, 6):
            report(epoch, lr)  # a flat curve: a trial is as good as its lr
        return lr

    res = tune(
        BASE,
        SPACE,
        n_trials=10,
        output_dir=tmp_path,
        objective=objective,
        pruner_startup_trials=2,
        pruner_warmup_epochs=0,
    )
    trials = res.study.trials
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert res.n_pruned == len(pruned) >= 1
    for t in pruned:  # every pruned trial was below the median of the trials before it
        earlier = [
            s.params["model.params.lr"] for s in trials[: t.number] if s.state.name == "COMPLETE"
        ]
        assert t.params["model.params.lr"] < np.median(earlier)
    assert res.best_value == max(t.value for t in trials if t.state.name == "COMPLETE")


def test_bad_space_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="low"):
        tune(
            BASE,
            {"model.params.lr": {"type": "float", "high": 1.0}},
            n_trials=1,
            output_dir=tmp_path,
        )
    with pytest.raises(ValueError, match="choices"):
        tune(BASE, {"model.params.lr": {"type": "categorical"}}, n_trials=1, output_dir=tmp_path)


def test_invalid_trial_params_fail_loudly(tmp_path: Path):
    space = {"model.params.no_such_param": {"type": "int", "low": 1, "high": 2}}
    with pytest.raises(ConfigError, match="no_such_param"):
        tune(BASE, space, n_trials=1, output_dir=tmp_path, dataset=_groups())


def test_cli_tune(tmp_path: Path, capsys):
    ds_path = tmp_path / "ds"
    _groups().save(ds_path)
    cfg = {
        **BASE,
        "data": {**BASE["data"], "name": str(ds_path)},
        "tune": {"space": SPACE, "metric": "recall@10"},
    }
    cfg_path = tmp_path / "exp.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    rc = main(["tune", "--config", str(cfg_path), "--trials", "2", "--output", str(out)])
    assert rc == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "best valid recall@10" in printed
    assert re.search(r"trial 0 \(1/2\): recall@10 [01]\.\d{4} · best .* s/trial · about \d+ s left", printed)
    assert re.search(r"trial 1 \(2/2\): recall@10 [01]\.\d{4} · best [01]\.\d{4} \(trial \d\) · \d+ s/trial\n", printed)
    for name in ("best_config.yaml", "history.png", "trials.csv", "tune.db"):
        assert (out / name).is_file(), name
    best = load_config(out / "best_config.yaml")  # a valid experiment config, ready to train
    assert best.model.name == "lightgcn" and best.tune is None


def test_cli_tune_without_tune_section(tmp_path: Path, capsys):
    cfg_path = tmp_path / "exp.yaml"
    cfg_path.write_text(yaml.safe_dump(BASE))
    rc = main(["tune", "--config", str(cfg_path), "--trials", "1", "--output", str(tmp_path / "o")])
    assert rc == 1
    assert "no 'tune:' section" in capsys.readouterr().err


def test_trials_train_on_augmented_data_and_validate_on_the_real_split(monkeypatch):
    """``data.augment`` applies in tuning as in ``fusionrec train``: each trial's model is fitted
    on the augmented training split (the same augmentation as fit_and_evaluate's, same seed)."""
    from fusionrec.data.augmentation import augment_interactions
    from fusionrec.experiment import prepare_data
    from fusionrec.experiment.config import config_from_dict
    from fusionrec.experiment.tuning import default_objective
    from fusionrec.models.classic.pop import Pop

    ds = _groups()
    base = {
        "data": {
            "name": "groups",
            "protocol": "rs",
            "ratios": [0.8, 0.1, 0.1],
            "augment": {"edge_substitute": 0.5, "substitute_mode": "add"},
        },
        "model": {"name": "pop"},
        "seed": 3,
    }
    seen: list[int] = []
    fit = Pop.fit

    def spy(self, train, valid=None, **kw):
        seen.append(train.n_interactions)
        return fit(self, train, valid, **kw)

    monkeypatch.setattr(Pop, "fit", spy)
    value = default_objective("ndcg@5", dataset=ds)(base, lambda e, v: None)
    cfg = config_from_dict(base, source="test")
    sp = prepare_data(cfg.data, cfg.seed, ds)[1]
    expect = augment_interactions(sp.train, cfg.data.augment, np.random.default_rng(3))
    assert expect.n_interactions > sp.train.n_interactions
    assert seen == [expect.n_interactions]
    assert 0.0 <= value <= 1.0


def test_trial_zero_is_the_base_config_so_tuning_never_loses_to_it(tmp_path: Path):
    """Issue 17 item 12: the shipped BPR search's best config tested below the untuned default.
    A new study's first trial runs the base config's values (the model's defaults where the
    config sets none); a value outside the space is left to the sampler."""
    from fusionrec.models.graph.lightgcn import LightGCNConfig

    space = {
        **SPACE,
        "model.params.embedding_dim": {"type": "categorical", "choices": [8, 16]},
        "train.epochs": {"type": "int", "low": 5, "high": 9},  # the base's 3 is outside
    }
    seen: list[dict] = []

    def objective(cfg, report):
        seen.append(cfg)
        return cfg["model"]["params"]["lr"]

    res = tune(BASE, space, n_trials=3, output_dir=tmp_path, objective=objective)
    first = res.study.trials[0].params
    assert first["model.params.lr"] == LightGCNConfig.model_fields["lr"].default
    assert first["model.params.n_layers"] == LightGCNConfig.model_fields["n_layers"].default
    assert first["model.params.embedding_dim"] == 8  # the base config's own value
    assert 5 <= first["train.epochs"] <= 9  # sampled: 3 is not in the space
    assert seen[0]["model"]["params"]["lr"] == first["model.params.lr"]
    # a continued study does not run the baseline again; switched off, it is not run at all
    again = tune(BASE, space, n_trials=1, output_dir=tmp_path, objective=objective)
    assert len(again.study.trials) == 4
    off = tune(BASE, SPACE, n_trials=1, output_dir=tmp_path / "off", objective=objective, baseline_trial=False)
    assert off.study.trials[0].params["model.params.lr"] != LightGCNConfig.model_fields["lr"].default
