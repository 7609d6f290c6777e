"""Models behind one estimator interface, found by name in the registry."""

from fusionrec.models.base import Capabilities, ModelConfig, Recommender, load_model
from fusionrec.models.registry import ModelInfo, get_model, list_models, register

__all__ = ["Recommender", "ModelConfig", "Capabilities", "load_model", "get_model", "list_models", "register", "ModelInfo"]
