"""Model registry: ``@register("name")`` on a Recommender subclass; look-up by name.

Every model, built-in or third-party, is found through the ``fusionrec.models`` entry-point
group (``name = "package.module:Class"``; fusionrec's own table is in its ``pyproject.toml``).
``get_model(name)`` imports only that model's module, ``list_models()`` all of them; a module
that fails to import raises an error naming the model instead of being skipped, and
``import fusionrec`` stays light. Code may also call ``register`` directly (tests, notebooks).
The registry sits at the bottom of ``models/`` so it imports no model family.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from fusionrec.errors import ConfigError

if TYPE_CHECKING:
    from fusionrec.models.base import Capabilities, Recommender

__all__ = ["register", "get_model", "list_models", "ModelInfo", "FAMILIES", "family_of"]

_REGISTRY: dict[str, type[Recommender]] = {}
ENTRY_POINT_GROUP = "fusionrec.models"

#: family folder under ``fusionrec.models`` -> what it holds (the order of ``fusionrec models``).
FAMILIES: dict[str, str] = {
    "classic": "classic collaborative filtering",
    "neural": "deep models over ids and features",
    "graph": "graph models",
    "sequential": "sequential models",
    "text": "pretrained language models",
    "kg": "knowledge graph / multimodal",
    "composite": "models made of other models",
}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    cls: type
    config_schema: dict[str, Any]
    capabilities: Capabilities
    summary: str
    family: str


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


def _entry_points() -> dict[str, EntryPoint]:
    out: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name.lower(), ep)
    return out


def _load(name: str, ep: EntryPoint) -> None:
    try:
        cls = ep.load()
    except Exception as e:  # a broken model module must name itself, never vanish
        raise ConfigError(f"model {name!r} ({ep.value}) failed to import: {type(e).__name__}: {e}") from e
    if name not in _REGISTRY:
        register(name)(cls)
    elif _REGISTRY[name] is not cls:
        raise ConfigError(f"entry point {name!r} -> {ep.value} but {name!r} is registered by {_REGISTRY[name].__qualname__}")


def get_model(name: str) -> type[Recommender]:
    """The Recommender class registered under ``name``."""
    key = name.lower()
    if key not in _REGISTRY:
        eps = _entry_points()
        if key in eps:
            _load(key, eps[key])
    try:
        return _REGISTRY[key]
    except KeyError:
        _load_all()
        raise ConfigError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}") from None


def _load_all() -> None:
    for key, ep in _entry_points().items():
        if key not in _REGISTRY:
            _load(key, ep)


def family_of(cls: type) -> str:
    """The family folder of a model class ('classic', 'text', ...; 'plugin' for others)."""
    parts = cls.__module__.split(".")
    if len(parts) >= 3 and parts[:2] == ["fusionrec", "models"] and parts[2] in FAMILIES:
        return parts[2]
    return "plugin"


def list_models() -> list[ModelInfo]:
    """Every registered model, sorted by name."""
    _load_all()
    out = []
    for name in sorted(_REGISTRY):
        cls = _REGISTRY[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append(ModelInfo(name, cls, cls.Config.model_json_schema(), cls.capabilities, doc[0] if doc else "", family_of(cls)))
    return out
