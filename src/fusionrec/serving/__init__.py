"""The recommendation service: ``create_app(settings)`` (FastAPI), event and key stores, ANN, cache.

Routes (every ``/v1`` route needs ``Authorization: Bearer <key>`` or ``X-API-Key``):
``POST /v1/recommend``, ``GET /v1/items/{item_id}/similar``, ``GET /v1/users/{user_id}/history``,
``GET /v1/users``, ``GET /v1/explain``, ``POST /v1/feedback``, ``GET /v1/models``,
``POST /v1/admin/reload`` (admin scope); open: ``/healthz``, ``/readyz``, ``/metrics``, ``/``.

Item titles and genres come from ``catalog.parquet`` in the model folder
(``write_catalog(dataset, model_dir)``; ``fusionrec retrain`` writes it), else from the item
table of ``--dataset``. Embedding models exposing ``user_vectors()`` (score = user · item
vector) are retrieved through a faiss index above ``ann_threshold`` items, then re-ranked
by the model's exact scores. Import is light; FastAPI and faiss load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app", "ServeSettings", "write_catalog"]

if TYPE_CHECKING:
    from fusionrec.serving.app import create_app
    from fusionrec.serving.catalog import write_catalog
    from fusionrec.serving.settings import ServeSettings


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from fusionrec.serving.app import create_app

        return create_app
    if name == "ServeSettings":
        from fusionrec.serving.settings import ServeSettings

        return ServeSettings
    if name == "write_catalog":
        from fusionrec.serving.catalog import write_catalog

        return write_catalog
    raise AttributeError(name)
