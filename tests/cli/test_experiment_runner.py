"""``fusionrec.experiment.run`` is the one load -> split -> fit -> evaluate path: every command
goes through it; quickstart checks needs up front and reports failures in its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fusionrec.experiment as experiment
from fusionrec.cli.main import main
from fusionrec.data import Dataset
from fusionrec.errors import ConfigError
from fusionrec.evaluation import Evaluator
from fusionrec.experiment import PreparedData, RunOptions, prepare, run, run_many, runner
from fusionrec.experiment.config import DataConfig, EvalConfig, ExperimentConfig, ModelSpec
from fusionrec.models.classic.itemknn import ItemKNN
from fusionrec.testing import toy_dataset


def _cfg(name: str, path: str | Path = "given", **params) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(name=str(path)),
        model=ModelSpec(name=name, params=params),
        eval=EvalConfig(metrics=["ndcg", "recall"], ks=[5]),
        seed=3,
    )


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str]]:
    """Every call of ``experiment.run`` as (model, stage); the real run still does the work."""
    seen: list[tuple[str, str]] = []
    real = runner.run

    def spy(config, options=None, dataset=None):
        seen.append((config.model.name, (options or RunOptions()).stage))
        return real(config, options, dataset)

    monkeypatch.setattr(runner, "run", spy)
    monkeypatch.setattr(experiment, "run", spy)
    return seen


def test_quickstart_train_tune_ablation_and_ensemble_all_go_through_run(
    small_dataset: Path, tmp_path: Path, calls
):
    assert main(["quickstart", "--dataset", str(small_dataset), "--models", "pop,itemknn",
                 "--output", str(tmp_path / "q")]) == 0  # fmt: skip
    assert calls == [("pop", "test"), ("itemknn", "test")]

    cfg = tmp_path / "pop.yaml"
    cfg.write_text(f"data: {{name: '{small_dataset}'}}\nmodel: {{name: pop}}\n")
    assert main(["train", "--config", str(cfg), "--run-dir", str(tmp_path / "t")]) == 0
    assert calls[-1] == ("pop", "test")

    tune_cfg = tmp_path / "tune.yaml"
    tune_cfg.write_text(
        f"data: {{name: '{small_dataset}'}}\nmodel: {{name: itemknn}}\n"
        "tune: {space: {model.params.k: {type: int, low: 2, high: 10}}, pruner: none}\n"
    )
    assert main(["tune", "--config", str(tune_cfg), "--trials", "2", "--output", str(tmp_path / "u")]) == 0
    assert calls[-2:] == [("itemknn", "valid"), ("itemknn", "valid")]

    assert main(["ensemble", "--members", "pop,itemknn", "--data", str(small_dataset),
                 "--output", str(tmp_path / "e")]) == 0  # fmt: skip
    assert calls[-1] == ("ensemble", "test")
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["model"] == "ensemble"

    from fusionrec.experiment.ablation import run_ablation

    fast = {"embedding_dim": 8, "batch_size": 128}
    run_ablation(toy_dataset(), ["id"], epochs=1, patience=0, params={"id": fast}, log=lambda s: None)
    assert calls[-1] == ("mm_mf", "test")


def test_run_equals_fitting_and_evaluating_by_hand(small_dataset: Path, tmp_path: Path):
    cfg = _cfg("itemknn", small_dataset, k=5)
    res = run(cfg, RunOptions(output_dir=tmp_path))
    prepared = prepare(cfg.data, cfg.seed)
    model = ItemKNN(k=5).fit(prepared.split.train, prepared.split.valid, seed=3)
    expect = Evaluator(metrics=("ndcg", "recall"), ks=(5,)).evaluate_split(model, prepared.split)
    assert res.metrics == pytest.approx(expect.metrics, abs=0)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"] == res.metrics and saved["model"] == "itemknn"
    assert (tmp_path / "models" / "itemknn" / "experiment.json").is_file()
    assert "recommender" not in saved and res.recommender is not None
    # the valid stage scores the validation part instead
    valid = run(cfg, RunOptions(stage="valid"), prepared)
    want = Evaluator(metrics=("ndcg", "recall"), ks=(5,)).evaluate_split(model, prepared.split, "valid")
    assert valid.metrics == want.metrics and valid.stage == "valid"


def test_prepared_data_must_match_the_config():
    ds = toy_dataset()
    prepared = prepare(DataConfig(name="toy"), seed=1, dataset=ds)
    with pytest.raises(ConfigError, match="split with seed 1"):
        run(_cfg("pop", "toy"), dataset=prepared)  # the config says seed 3
    assert isinstance(prepared, PreparedData)


def _no_kg() -> Dataset:
    from fusionrec.data.synthetic import make_synthetic

    return make_synthetic(n_users=60, n_items=40, n_interactions_per_user=8, seed=3, kg=False)


def test_run_many_checks_every_models_needs_before_training(monkeypatch):
    ds = _no_kg()
    assert ds.kg is None
    fitted: list[str] = []
    real = runner._execute

    def spy(config, opts, prep):
        fitted.append(config.model.name)
        return real(config, opts, prep)

    monkeypatch.setattr(runner, "_execute", spy)
    configs = [_cfg("pop"), _cfg("cke"), _cfg("itemknn")]
    with pytest.raises(ConfigError, match="nothing was trained: model 'cke' needs a knowledge graph"):
        run_many(configs, dataset=ds)
    assert fitted == []  # refused up front: not one model was fitted
    results = run_many(configs, dataset=ds, skip_unmet=True)
    assert fitted == ["pop", "itemknn"]
    assert [r.skipped is not None for r in results] == [False, True, False]
    assert "needs a knowledge graph" in results[1].skipped and results[1].metrics == {}


def test_run_many_keeps_going_after_a_failure_but_not_after_ctrl_c(monkeypatch):
    ds = toy_dataset()

    def boom(self, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(ItemKNN, "_fit", boom)
    res = run_many([_cfg("itemknn"), _cfg("pop")], dataset=ds)
    assert res[0].error == "RuntimeError: boom" and res[0].metrics == {}
    assert res[1].error is None and 0 <= res[1].metrics["ndcg@5"] <= 1

    def interrupt(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ItemKNN, "_fit", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_many([_cfg("itemknn"), _cfg("pop")], dataset=ds)


def test_quickstart_refuses_a_named_model_the_dataset_cannot_feed(small_dataset, tmp_path, capsys):
    out = tmp_path / "q"
    rc = main(["quickstart", "--dataset", str(small_dataset), "--models", "pop,cke", "--output", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "nothing was trained" in err and "model 'cke' needs a knowledge graph" in err
    assert not (out / "models").exists()


def test_quickstart_all_skips_unmet_needs_and_exits_1_when_a_model_fails(
    small_dataset, tmp_path, monkeypatch, capsys
):
    from fusionrec.models import registry

    keep = {"pop", "itemknn", "cke"}
    real = registry.list_models
    monkeypatch.setattr(registry, "list_models", lambda: [m for m in real() if m.name in keep])

    def boom(self, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(ItemKNN, "_fit", boom)
    out = tmp_path / "q"
    rc = main(["quickstart", "--dataset", str(small_dataset), "--models", "all", "--output", str(out)])
    cap = capsys.readouterr()
    assert rc == 1
    assert "1 of 2 models failed: itemknn" in cap.err
    assert "skipped, the dataset lacks what they need: cke" in cap.out.replace("\n", " ")
    board = json.loads((out / "leaderboard.json").read_text())
    by_name = {m["model"]: m for m in board["models"]}
    assert by_name["itemknn"]["error"] == "RuntimeError: boom"
    assert by_name["pop"]["metrics"]["ndcg@10"] > 0  # the others still ran and were saved
    assert (out / "models" / "pop").is_dir() and len(board["skipped"]) == 1
    assert "RuntimeError: boom" in (out / "leaderboard.md").read_text()


def test_ctrl_c_during_train_exits_130(small_dataset, tmp_path, monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "run", interrupted)
    cfg = tmp_path / "pop.yaml"
    cfg.write_text(f"data: {{name: '{small_dataset}'}}\nmodel: {{name: pop}}\n")
    assert main(["train", "--config", str(cfg), "--run-dir", str(tmp_path / "t")]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_run_options_reach_the_model_and_are_not_saved(tmp_path):
    ds = toy_dataset()
    seen: list[int] = []
    cfg = ExperimentConfig(
        data=DataConfig(name="toy"),
        model=ModelSpec(name="bpr", params={"epochs": 2, "embedding_dim": 4, "batch_size": 64}),
        run={"device": "cpu"},
    )
    res = run(cfg, RunOptions(callbacks=(lambda e, r: seen.append(e),), output_dir=tmp_path), ds)
    assert seen == [1, 2]
    saved = json.loads((tmp_path / "models" / "bpr" / "config.json").read_text())
    assert "device" not in json.dumps(saved.get("params", saved))
    assert res.epochs_run == 2


def test_run_options_validate():
    with pytest.raises(ConfigError, match="device"):
        RunOptions(device="gpu")
    with pytest.raises(ConfigError, match="cpu_threads"):
        RunOptions(cpu_threads=0)
    with pytest.raises(ConfigError, match="resume needs a train_dir"):
        RunOptions(resume=True)
    assert RunOptions(device="cpu").with_defaults({"device": "cuda", "cpu_threads": 2}) == RunOptions(
        device="cpu", cpu_threads=2
    )


def test_fit_and_evaluate_wrapper_is_the_same_run():
    ds = Dataset.from_frames(
        __import__("pandas").DataFrame(
            {"user_id": np.repeat(["a", "b", "c", "d"], 5), "item_id": [f"i{j % 7}" for j in range(20)]}
        ),
        name="w",
    )
    from fusionrec.data.splits import split

    sp = split(ds, "rs", (0.6, 0.2, 0.2), seed=0)
    res, model, ev = experiment.fit_and_evaluate("pop", {}, sp, EvalConfig(ks=[3]), seed=0)
    assert res.recommender is model and res.evaluation is ev
    assert res.metrics == run(ExperimentConfig(model=ModelSpec(name="pop"), eval=EvalConfig(ks=[3]), seed=0), dataset=sp).metrics
