"""Model folders saved by main before the one-layer-per-folder refactor (tests/fixtures/legacy_v1,
made by tests/fixtures/make_legacy_v1.py) still load and give the same scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.models import load_model

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1"
NAMES = sorted(p.name for p in LEGACY.iterdir() if p.is_dir())


def test_fixture_covers_the_models_it_was_made_for():
    assert {"pop", "itemknn", "ease", "bpr", "neumf", "lightgcn", "sasrec", "two_tower", "deepfm", "cke"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_legacy_folder_loads_and_scores_identically(name):
    model = load_model(LEGACY / name)
    users = np.load(LEGACY / "users.npy")
    expected = np.load(LEGACY / f"{name}.scores.npy")
    np.testing.assert_allclose(model.score(users), expected, rtol=1e-5, atol=1e-6)
