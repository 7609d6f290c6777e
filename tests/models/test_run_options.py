"""Run options never travel with a saved model: a folder whose config says ``device: cuda``
loads on a CPU machine, a new save writes no run keys, and run keys given to a constructor are
deprecated and only become that instance's default FitOptions."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from fusionrec.config.vocabulary import RUN_KEYS
from fusionrec.models import load_model
from fusionrec.models.classic.bpr import BPR
from fusionrec.models.classic.ease import EASE
from fusionrec.testing import toy_dataset
from fusionrec.training import FitOptions

FAST = {"epochs": 2, "batch_size": 64, "embedding_dim": 4, "patience": 0}


@pytest.fixture(scope="module")
def fitted():
    ds = toy_dataset()
    return ds, BPR(**FAST).fit(ds, seed=0, options=FitOptions(device="cpu"))


def _params(folder):
    return json.loads((folder / "config.json").read_text())["params"]


def test_a_new_save_writes_no_run_keys(fitted, tmp_path):
    _, m = fitted
    m.save(tmp_path / "m")
    assert not set(RUN_KEYS) & set(_params(tmp_path / "m"))
    assert _params(tmp_path / "m")["embedding_dim"] == 4


def test_folder_saved_with_cuda_device_loads_on_cpu(fitted, tmp_path):
    ds, m = fitted
    folder = m.save(tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    meta["params"].update(device="cuda", progress=True, cpu_threads=4)
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"ignoring run options saved by an older fusionrec: device, cpu_threads, progress") as rec:
        loaded = load_model(folder, device="cpu")
    assert sum("ignoring run options" in str(w.message) for w in rec) == 1
    assert loaded.device_.type == "cpu"
    users = ds.users.ids[:10]
    np.testing.assert_array_equal(loaded.score(users), m.score(users))
    loaded.save(tmp_path / "again")
    assert not set(RUN_KEYS) & set(_params(tmp_path / "again"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_asking_for_cuda_at_load_time_on_a_cpu_machine_is_a_clear_error(fitted, tmp_path):
    folder = fitted[1].save(tmp_path / "m")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        load_model(folder, device="cuda")
    assert load_model(folder).device_.type == "cpu"  # "auto" falls back to the CPU


def test_constructor_run_keys_are_deprecated_defaults_never_saved(tmp_path):
    ds = toy_dataset()
    with pytest.warns(DeprecationWarning, match="cpu_threads, device describe the run"):
        m = BPR(device="cpu", cpu_threads=2, **FAST)
    assert m.default_options == FitOptions(device="cpu", cpu_threads=2)
    assert "device" not in m.config.model_dump()
    m.fit(ds, seed=0)
    assert m.fit_options_.cpu_threads == 2 and m.device_.type == "cpu"
    assert not set(RUN_KEYS) & set(_params(m.save(tmp_path / "m")))
    # explicit options win over the constructor's defaults
    m.fit(ds, seed=0, options=FitOptions(cpu_threads=1))
    assert m.fit_options_.cpu_threads == 1


def test_run_keys_on_a_model_without_torch_are_accepted_and_ignored():
    with pytest.warns(DeprecationWarning, match="device describe the run"):
        m = EASE(device="cpu")
    m.fit(toy_dataset())
    assert m.fitted_


def test_run_keys_given_to_a_config_class_are_dropped_with_a_warning():
    from fusionrec.models.classic.bpr import BPRConfig

    with pytest.warns(DeprecationWarning, match="run options are not model parameters, ignored: device, progress"):
        c = BPRConfig(device="cuda", progress=True)
    assert c == BPRConfig()


def test_loading_a_current_folder_warns_nothing(fitted, tmp_path):
    folder = fitted[1].save(tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(folder)
