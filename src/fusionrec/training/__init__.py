"""The shared Trainer, its configuration (``TrainConfig``, saved with the model) and its run
options (``FitOptions``, never saved)."""

from fusionrec.training.config import TrainConfig
from fusionrec.training.options import FitOptions
from fusionrec.training.trainer import Callback, Trainer, TrainHistory, lr_factor, resolve_device

__all__ = ["Trainer", "TrainConfig", "FitOptions", "TrainHistory", "resolve_device", "lr_factor", "Callback"]
