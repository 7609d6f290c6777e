"""The shared Trainer and its configuration."""

from fusionrec.training.config import TrainConfig
from fusionrec.training.trainer import Callback, Trainer, TrainHistory, lr_factor, resolve_device

__all__ = ["Trainer", "TrainConfig", "TrainHistory", "resolve_device", "lr_factor", "Callback"]
