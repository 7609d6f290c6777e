"""Typed experiment configuration."""

from fusionrec.config.experiment import (
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    ModelSpec,
    ServeConfig,
    apply_overrides,
    config_from_dict,
    load_config,
)

__all__ = ["ExperimentConfig", "DataConfig", "ModelSpec", "EvalConfig", "ServeConfig", "load_config", "apply_overrides", "config_from_dict"]
