"""``ModelConfig``: the base of every model's typed config (frozen, unknown keys refused).

It lives below ``training/`` and ``models/`` so both can build on it without importing each
other. Deprecated parameter names (the vocabulary before ``embedding_dim`` and friends) are
declared per class in ``_aliases`` and mapped here once (see ``fusionrec.config.vocabulary``
for the table); run options (``device``, ``cpu_threads``, ``progress``) are no longer config
fields and are dropped with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from fusionrec.config.vocabulary import resolve_aliases, split_run_keys

__all__ = ["ModelConfig"]


class ModelConfig(BaseModel):
    """Base of every model config: typed, frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    #: Deprecated parameter names of this class: ``{old: new}`` (inherited from the bases).
    _aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Every deprecated ``old -> new`` name of this config, its bases' included."""
        out: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            out.update(klass.__dict__.get("_aliases", {}) or {})
        return out

    @classmethod
    def normalise_params(cls, data: dict[str, Any], stacklevel: int = 4) -> dict[str, Any]:
        """``data`` in today's vocabulary: deprecated names renamed (``DeprecationWarning``)."""
        return resolve_aliases(cls.__name__, cls.aliases(), data, stacklevel=stacklevel)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = cls.normalise_params(data, stacklevel=6)
        data, run = split_run_keys(data, cls.model_fields)
        if run:
            warnings.warn(
                f"{cls.__name__}: run options are not model parameters, ignored: "
                f"{', '.join(sorted(run))} (pass fit(..., options=FitOptions(...)))",
                DeprecationWarning,
                stacklevel=4,
            )
        return data
