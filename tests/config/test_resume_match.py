"""Which saved config ``train --resume`` accepts as "the same experiment"."""

from __future__ import annotations

import pytest

from fusionrec.experiment.config import config_from_dict
from fusionrec.experiment.resume import check_same_experiment, config_differences
from fusionrec.models.classic.bpr import BPRConfig


def _cfg(**sections):
    return config_from_dict({"model": {"name": "bpr"}, **sections})


def test_equal_settings_compare_equal_however_they_are_written():
    plain = _cfg()
    spelled_out = _cfg(
        model={"name": "bpr", "params": {"embedding_size": 64}},  # deprecated alias, default value
        train={"lr": BPRConfig.model_fields["lr"].default},  # the default, written out
    )
    assert config_differences(plain, spelled_out) == []
    # run settings and the epoch budget are not part of the experiment
    assert config_differences(plain, _cfg(train={"epochs": 7}, run={"device": "cpu", "cpu_threads": 2})) == []


def test_each_difference_is_named_with_both_values():
    a = _cfg(train={"lr": 0.001}, seed=1)
    b = _cfg(train={"lr": 0.01}, seed=2, data={"protocol": "temporal"})
    assert config_differences(a, b) == [
        'data.protocol: "rs" -> "temporal"',
        "model.params.lr: 0.001 -> 0.01",
        "seed: 1 -> 2",
    ]
    assert config_differences(_cfg(), config_from_dict({"model": {"name": "lightgcn"}}))[0].startswith(
        'model.name: "bpr" -> "lightgcn"'
    )


def test_check_same_experiment_reads_the_run_folder(tmp_path):
    from fusionrec.errors import ConfigError

    check_same_experiment(tmp_path, _cfg(), "resume")  # no config.json: nothing to compare
    (tmp_path / "config.json").write_text(_cfg(train={"lr": 0.001}).model_dump_json())
    check_same_experiment(tmp_path, _cfg(train={"lr": 0.001, "epochs": 3}), "resume")
    with pytest.raises(ConfigError, match=r"cannot resume .*model\.params\.lr: 0\.001 -> 0\.02"):
        check_same_experiment(tmp_path, _cfg(train={"lr": 0.02}), "resume")
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="is not a valid experiment config"):
        check_same_experiment(tmp_path, _cfg(), "resume")
