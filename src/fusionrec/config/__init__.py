"""Typed configuration shared below the experiment layer: the ``ModelConfig`` base.

The experiment config (data, model, train, eval, serve) is ``fusionrec.experiment.config``.
"""

from fusionrec.config.base import ModelConfig

__all__ = ["ModelConfig"]
