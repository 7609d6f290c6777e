"""Every example config under configs/ loads and validates (model params against the model,
the tune section against TuneConfig)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionrec.experiment.config import load_config
from fusionrec.experiment.tuning_config import TuneConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert {p.name for p in CONFIGS} >= {"bpr.yaml", "ease.yaml", "sasrec_cl.yaml", "tune_bpr.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_validates(path: Path):
    cfg = load_config(path)
    cfg.model_params()
    if cfg.tune is not None:
        TuneConfig.model_validate(cfg.tune)


def test_tune_bpr_searches_around_the_defaults():
    """The search's trial 0 is BPR's defaults, so its best never loses to them on validation."""
    from fusionrec.experiment.tuning import _base_point

    cfg = load_config(CONFIGS[[p.name for p in CONFIGS].index("tune_bpr.yaml")])
    tc = TuneConfig.model_validate(cfg.tune)
    point = _base_point(cfg.model_dump(mode="json", exclude={"tune"}), tc)
    assert tc.baseline_trial and set(point) == set(tc.space)  # every default lies in the space
