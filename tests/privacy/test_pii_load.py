"""PII protection at load: ``data.pii`` in an experiment config (and ``--pii`` on train)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.experiment.config import DataConfig, load_config
from fusionrec.experiment.runner import prepare
from fusionrec.privacy.pii import pii_policy


def _people() -> Dataset:
    users = [f"u{i}" for i in range(6)]
    inter = pd.DataFrame({"user_id": [u for u in users for _ in range(10)],
                          "item_id": [f"i{(k + j) % 12}" for k in range(6) for j in range(10)]})
    table = pd.DataFrame({"user_id": users, "age": ["7", "23", "24", "41", "55", "70"],
                          "zip_code": ["02139", "94110", "10001", "60614", "30301", "98101"],
                          "gender": list("MFMFMF")})
    return Dataset.from_frames(inter, users=table, user_feature_types=dict.fromkeys(("age", "zip_code", "gender"), "token"))


def test_generalise_at_load() -> None:
    sp = prepare(DataConfig(pii="generalise"), seed=0, dataset=_people()).split
    uf = sp.train.user_features
    assert uf["zip_code"].tolist() == ["0", "9", "1", "6", "3", "9"]
    assert uf["age"].tolist() == ["<18", "18-24", "18-24", "35-44", "50-55", "56+"]
    assert uf["gender"].tolist() == list("MFMFMF")  # other columns untouched
    assert sp.test.user_features["zip_code"].tolist() == uf["zip_code"].tolist()  # every split


def test_drop_and_keep_at_load() -> None:
    uf = prepare(DataConfig(pii="drop"), seed=0, dataset=_people()).split.train.user_features
    assert "zip_code" not in uf.columns and "age" not in uf.columns and "gender" in uf.columns
    kept = prepare(DataConfig(), seed=0, dataset=_people()).split.train.user_features
    assert kept["zip_code"].tolist()[0] == "02139" and kept["age"].tolist()[0] == "7"


def test_config_and_override(tmp_path: Path) -> None:
    p = tmp_path / "exp.yaml"
    p.write_text("data: {name: ml-100k, pii: generalise}\nmodel: {name: pop}\n")
    assert load_config(p).data.pii == "generalise"
    assert load_config(p, ["data.pii=drop"]).data.pii == "drop"
    with pytest.raises(ConfigError, match="pii"):
        load_config(p, ["data.pii=blur"])
    with pytest.raises(ConfigError, match="pii must be"):
        pii_policy("blur")
