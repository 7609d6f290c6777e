"""Exceptions that carry a message meant for the user (the CLI prints them without a traceback)."""

from __future__ import annotations

__all__ = [
    "FusionRecError",
    "DataFormatError",
    "FetchError",
    "ConfigError",
    "UnknownIdError",
    "ModelStateError",
    "InsufficientMemoryError",
]


class FusionRecError(Exception):
    """Base class of every error whose message is written for the user."""


class DataFormatError(FusionRecError, ValueError):
    """A data file does not have the expected format. The message names the file, line and expectation."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class FetchError(FusionRecError):
    """No source of a dataset could be reached."""


class ConfigError(FusionRecError, ValueError):
    """A configuration is invalid (unknown key, wrong type, unknown model)."""


class UnknownIdError(FusionRecError, KeyError):
    """An external user or item id is not known to the model or dataset."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0]) if self.args else ""


class ModelStateError(FusionRecError, RuntimeError):
    """A model was used before fit, or a saved model folder is invalid."""


class InsufficientMemoryError(FusionRecError, MemoryError):
    """A job would need more memory than the machine (or GPU) has; the message says how much
    it needs, how much is available and what to change."""
