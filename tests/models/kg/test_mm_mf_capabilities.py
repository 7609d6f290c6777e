"""mm_mf declares cold_start_items only when it fuses modalities (issue 16: declared
capabilities follow the config, and the conformance checks verify what is declared)."""

from __future__ import annotations

import numpy as np

from fusionrec.models.base import load_model
from fusionrec.models.registry import get_model
from fusionrec.testing.conformance import skipped_checks
from fusionrec.testing.toy import toy_dataset


def test_mm_mf_without_modalities_declares_no_cold_start() -> None:
    cls = get_model("mm_mf")
    assert cls.capabilities.cold_start_items is False  # the defaults: ID only
    assert cls().capabilities.cold_start_items is False
    assert cls(modalities=["image"]).capabilities.cold_start_items is True


def test_cke_declares_cold_start_with_or_without_modalities() -> None:
    cls = get_model("cke")
    assert cls().capabilities.cold_start_items is True
    assert cls(modalities=["image"]).capabilities.cold_start_items is True
    assert cls().capabilities.needs_kg is True


def test_the_cold_item_check_runs_only_for_the_declaring_config() -> None:
    id_only = skipped_checks("mm_mf", {"embedding_dim": 4, "epochs": 1})
    assert id_only["cold_item_signal"] == "model does not declare cold_start_items"
    with_image = skipped_checks("mm_mf", {"embedding_dim": 4, "epochs": 1, "modalities": ["image"]})
    assert "cold_item_signal" not in with_image


def test_loaded_folder_declares_what_its_config_says(tmp_path) -> None:
    ds = toy_dataset()
    m = get_model("mm_mf")(embedding_dim=4, epochs=1, batch_size=64).fit(ds, seed=0)
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.capabilities.cold_start_items is False
    np.testing.assert_allclose(back.score_indices(np.arange(3)), m.score_indices(np.arange(3)), rtol=1e-5)
