"""``ModelConfig``: the base of every model's typed config (frozen, unknown keys refused).

It lives below ``training/`` and ``models/`` so both can build on it without importing each
other. Deprecated parameter names (the vocabulary before ``embedding_dim`` and friends) are
mapped by ``fusionrec.config.vocabulary``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["ModelConfig"]


class ModelConfig(BaseModel):
    """Base of every model config: typed, frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
