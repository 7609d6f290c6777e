"""The benchmark child (``benchmarks/_run_fusionrec.py``) fits and evaluates through
``fusionrec.experiment.run``, the chain the CLI uses, and reports the same metrics."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import fusionrec.experiment as experiment
from fusionrec.evaluation import Evaluator
from fusionrec.experiment import prepare
from fusionrec.experiment.config import DataConfig
from fusionrec.models.classic.itemknn import ItemKNN
from fusionrec.testing import toy_dataset

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "_run_fusionrec.py"


@pytest.fixture
def child(monkeypatch):
    spec = importlib.util.spec_from_file_location("_run_fusionrec", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_run_fusionrec"] = mod
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "_load_ml100k", toy_dataset)
    yield mod
    sys.modules.pop("_run_fusionrec", None)


def test_child_goes_through_experiment_run(child, monkeypatch):
    calls = []
    real = experiment.run
    monkeypatch.setattr(experiment, "run", lambda *a, **k: calls.append(a[0].model.name) or real(*a, **k))
    rec = child.run("itemknn", "rs", kg_only=False, seed=5)
    assert calls == ["itemknn"] and rec["status"] == "ok"
    ds = toy_dataset()
    sp = prepare(DataConfig(name=ds.name), 5, ds).split
    want = Evaluator(ks=(10,)).evaluate_split(ItemKNN().fit(sp.train, sp.valid, seed=5), sp)
    assert rec["ndcg@10"] == round(float(want["ndcg@10"]), 6)
    assert rec["n_train"] == sp.train.n_interactions and rec["fit_cpu_s"] >= 0


def test_kg_only_never_ranks_unlinked_items(child):
    rec = child.run("pop", "rs", kg_only=True, seed=5)
    ds = toy_dataset()
    assert rec["status"] == "ok" and rec["n_items"] == int((ds.kg.item_entity >= 0).sum())
    assert child.run("nope", "rs", kg_only=False, seed=5)["status"] == "not available"
