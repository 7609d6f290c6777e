"""PII generalisation: known answers for zip prefixes and age bands."""

from __future__ import annotations

import pandas as pd
import pytest

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.privacy import PIIPolicy, protect_pii
from fusionrec.privacy.pii import age_band, zip_prefix


def test_age_bands_known_answer() -> None:
    got = age_band(pd.Series([7, 18, 24, 25, 49, 50, 56, 73]))
    assert got.tolist() == ["<18", "18-24", "18-24", "25-34", "45-49", "50-55", "56+", "56+"]
    with pytest.raises(ConfigError, match="non-number"):
        age_band(pd.Series(["old"]))
    with pytest.raises(ConfigError, match="ascending"):
        age_band(pd.Series([1]), (30, 20))


def test_zip_prefix() -> None:
    assert zip_prefix(pd.Series(["02139", " 94110", "t8h1z", ""]), 1).tolist() == ["0", "9", "T", None]


def test_protect_dataset() -> None:
    inter = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]})
    users = pd.DataFrame({"user_id": ["a", "b"], "age": ["23", "61"], "zip_code": ["02139", "94110"], "occupation": ["writer", "doctor"]})
    ds = Dataset.from_frames(inter, users=users, user_feature_types=dict.fromkeys(("age", "zip_code", "occupation"), "token"))
    out = protect_pii(ds, PIIPolicy(drop=("occupation",)))
    assert out.user_features["age"].tolist() == ["18-24", "56+"]
    assert out.user_features["zip_code"].tolist() == ["0", "9"]
    assert "occupation" not in out.user_features.columns and "occupation" not in out.user_feature_types
    assert ds.user_features["zip_code"].tolist() == ["02139", "94110"]  # input untouched
    out2 = protect_pii(ds, PIIPolicy(zip="drop", age="keep"))
    assert "zip_code" not in out2.user_features.columns and out2.user_features["age"].tolist() == ["23", "61"]
    with pytest.raises(ConfigError, match="not columns"):
        protect_pii(ds, PIIPolicy(drop=("ssn",)))
