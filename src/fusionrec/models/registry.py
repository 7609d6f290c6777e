"""Model registry: ``@register("name")`` on a Recommender subclass; look-up by name.

Built-in models live in the modules listed in ``_BUILTIN_MODULES`` and are imported on first
look-up (so ``import fusionrec`` stays light). Third-party models register through the
``fusionrec.models`` entry-point group: ``name = "package.module:Class"``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from fusionrec.errors import ConfigError

if TYPE_CHECKING:
    from fusionrec.models.base import Capabilities, Recommender

__all__ = ["register", "get_model", "list_models", "ModelInfo"]

_REGISTRY: dict[str, type[Recommender]] = {}
_LOADED = False

# Each module registers its models when imported. Later issues append here.
_BUILTIN_MODULES: tuple[str, ...] = (
    # classic
    "fusionrec.models.pop",
    "fusionrec.models.itemknn",
    "fusionrec.models.ease",
    "fusionrec.models.bpr",
    # deep, graph, sequential
    "fusionrec.models.neumf",
    "fusionrec.models.two_tower",
    "fusionrec.models.deepfm",
    "fusionrec.models.lightgcn",
    "fusionrec.models.sasrec",
    "fusionrec.models.static_embedding",
    # language-model enhanced
    "fusionrec.models.lm_fused",
    "fusionrec.models.text_seq",
    "fusionrec.models.lm_ease",
    "fusionrec.models.lm_lightgcn",
    "fusionrec.models.lm_sasrec",
    # knowledge graph / multimodal
    "fusionrec.models.kg",
    "fusionrec.models.cke",
    "fusionrec.models.kgat",
    # strategies that are models
    "fusionrec.strategies.ensemble",
    "fusionrec.strategies.multitask",
    "fusionrec.strategies.distill",
    "fusionrec.strategies.label_propagation",
)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    cls: type
    config_schema: dict[str, Any]
    capabilities: Capabilities
    summary: str


def register(name: str):
    """Class decorator registering a Recommender under ``name`` (lower-case, unique)."""

    def deco(cls):
        key = name.lower()
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"model name {key!r} already registered by {_REGISTRY[key].__qualname__}")
        cls.name = key
        _REGISTRY[key] = cls
        return cls

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in _BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a module of a later issue not present yet
            if e.name != mod:
                raise
    for ep in entry_points(group="fusionrec.models"):
        cls = ep.load()
        if ep.name.lower() not in _REGISTRY:
            register(ep.name)(cls)


def get_model(name: str) -> type[Recommender]:
    """The Recommender class registered under ``name``."""
    _load_all()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}") from None


def list_models() -> list[ModelInfo]:
    _load_all()
    out = []
    for name in sorted(_REGISTRY):
        cls = _REGISTRY[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append(ModelInfo(name, cls, cls.Config.model_json_schema(), cls.capabilities, doc[0] if doc else ""))
    return out
