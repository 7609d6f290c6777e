"""fusionrec: one framework for classic, deep, language-model and knowledge-graph recommenders.

Importing the package is cheap: heavy parts (torch models, encoders, serving) load on use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "Dataset", "IdMap", "get_model", "list_models", "load_model"]


def __getattr__(name: str):  # lazy re-exports keep `import fusionrec` light
    if name in ("Dataset", "IdMap"):
        from fusionrec import data

        return getattr(data, name)
    if name in ("get_model", "list_models", "load_model"):
        from fusionrec import models

        return getattr(models, name)
    raise AttributeError(f"module 'fusionrec' has no attribute {name!r}")
