from pathlib import Path

import pytest

from fusionrec.errors import ConfigError
from fusionrec.experiment.config import apply_overrides, config_from_dict, load_config


def test_yaml_loads_and_merges_train_section(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("model: {name: bpr, params: {embedding_dim: 16}}\ntrain: {epochs: 3}\n")
    cfg = load_config(p)
    assert cfg.model_params() == {"epochs": 3, "embedding_dim": 16}
    assert cfg.data.protocol == "rs" and cfg.seed == 2020


def test_toml_and_overrides(tmp_path: Path):
    p = tmp_path / "c.toml"
    p.write_text('[model]\nname = "ease"\n[model.params]\nreg_weight = 10.0\n')
    cfg = load_config(p, ["model.params.reg_weight=99", "data.protocol=loo", "eval.ks=[5, 10]"])
    assert cfg.model.params["reg_weight"] == 99
    assert cfg.data.protocol == "loo"
    assert cfg.eval.ks == [5, 10]


def test_typo_in_model_param_fails_loudly():
    with pytest.raises(ConfigError, match="reg_wieght"):
        config_from_dict({"model": {"name": "ease", "params": {"reg_wieght": 1.0}}})


def test_train_key_unknown_to_model_fails():
    with pytest.raises(ConfigError, match="train.epochs"):
        config_from_dict({"model": {"name": "ease"}, "train": {"epochs": 3}})


def test_unknown_section_and_model_and_metric():
    with pytest.raises(ConfigError, match="modle"):
        config_from_dict({"modle": {"name": "ease"}, "model": {"name": "ease"}})
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        config_from_dict({"model": {"name": "nope"}})
    with pytest.raises(ConfigError, match="unknown metrics"):
        config_from_dict({"model": {"name": "ease"}, "eval": {"metrics": ["ndgc"]}})


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["train.epochs"])


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
