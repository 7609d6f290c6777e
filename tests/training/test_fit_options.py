"""FitOptions: the run settings of fit (never saved), and the Trainer taking its run settings
from them."""

from __future__ import annotations

import dataclasses

import pytest

from fusionrec.config.vocabulary import RUN_KEYS
from fusionrec.errors import ConfigError
from fusionrec.models.classic.bpr import BPR
from fusionrec.testing import toy_dataset
from fusionrec.training import FitOptions, TrainConfig, Trainer
from fusionrec.training.options import fit_options

FAST = {"epochs": 2, "batch_size": 64, "embedding_dim": 4, "patience": 0}


def test_fit_options_fields_are_the_run_keys_and_none_is_a_train_setting():
    assert tuple(f.name for f in dataclasses.fields(FitOptions)) == RUN_KEYS
    assert not set(RUN_KEYS) & set(TrainConfig.model_fields)
    o = FitOptions()
    assert (o.device, o.cpu_threads, o.progress, o.run_dir, o.resume, o.callbacks) == ("auto", 1, False, None, False, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.device = "cpu"  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "gpu"}, "device must be"),
        ({"device": "cuda:x"}, "device must be"),
        ({"cpu_threads": 0}, "cpu_threads"),
        ({"cpu_threads": True}, "cpu_threads"),
        ({"resume": True}, "needs a run_dir"),
        ({"callbacks": (1,)}, "callables"),
        ({"progress": "yes"}, "progress"),
    ],
)
def test_bad_fit_options_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FitOptions(**kwargs)


def test_callbacks_list_becomes_a_tuple_and_dicts_are_checked():
    def cb(epoch, record):
        return None

    assert FitOptions(callbacks=[cb]).callbacks == (cb,)
    assert fit_options({"device": "cpu"}).device == "cpu"
    with pytest.raises(ConfigError, match="unknown fit options devise"):
        fit_options({"devise": "cpu"})
    assert FitOptions(device="cpu").nested() == FitOptions(device="cpu")
    assert FitOptions(run_dir="x", resume=True, callbacks=[cb]).nested() == FitOptions()


def test_trainer_takes_callbacks_and_run_dir_from_options(tmp_path):
    ds = toy_dataset()
    seen: list[int] = []
    m = BPR(**FAST).fit(ds, seed=0, options=FitOptions(device="cpu", callbacks=(lambda e, r: seen.append(e),), run_dir=tmp_path))
    assert seen == [1, 2]
    assert (tmp_path / "log.csv").is_file() and (tmp_path / "checkpoint").is_dir()
    assert m.device_.type == "cpu" and m.fit_options_.run_dir == tmp_path
    t = Trainer(TrainConfig(), FitOptions(progress=True), callbacks=[print])
    assert t.options.progress and t.callbacks == [print]


def test_old_fit_keywords_fold_into_options_and_give_the_same_model(tmp_path):
    ds = toy_dataset()
    calls_old: list[int] = []
    calls_new: list[int] = []
    old = BPR(**FAST).fit(ds, seed=3, run_dir=tmp_path / "a", callbacks=[lambda e, r: calls_old.append(e)])
    new = BPR(**FAST).fit(ds, seed=3, options=FitOptions(run_dir=tmp_path / "b", callbacks=(lambda e, r: calls_new.append(e),)))
    assert calls_old == calls_new == [1, 2]
    assert old.fit_options_.run_dir == tmp_path / "a"
    assert (old.score(ds.users.ids[:5]) == new.score(ds.users.ids[:5])).all()


def test_progress_option_runs_and_changes_nothing():
    ds = toy_dataset()
    a = BPR(**FAST).fit(ds, seed=1, options=FitOptions(progress=True))
    b = BPR(**FAST).fit(ds, seed=1)
    assert (a.score(ds.users.ids[:5]) == b.score(ds.users.ids[:5])).all()


def test_resume_without_run_dir_is_refused():
    with pytest.raises(ConfigError, match="run_dir"):
        BPR(**FAST).fit(toy_dataset(), resume=True)
