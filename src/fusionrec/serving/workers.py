"""The app factory each uvicorn worker process calls (``fusionrec serve --workers N``).

uvicorn starts several workers only from an import string, so the settings travel to the
spawned processes as JSON in one environment variable (:data:`SETTINGS_ENV`), written by the
CLI with :func:`worker_environment`. Each worker builds its own app and service: its own
database connections, caches and metrics, and the model loaded from memory-mapped files, so
the arrays exist once in memory whatever the number of workers (``serving/shared_arrays.py``).
"""

from __future__ import annotations

import json
import logging
import os

from fastapi import FastAPI

from fusionrec.errors import ConfigError
from fusionrec.serving.app import create_app
from fusionrec.serving.settings import ServeSettings

__all__ = ["SETTINGS_ENV", "app_from_env", "worker_environment", "limit_faiss_threads"]

SETTINGS_ENV = "FUSIONREC_SERVE_SETTINGS_JSON"


def worker_environment(settings: ServeSettings, log_level: str = "info") -> dict[str, str]:
    """The environment entries that hand ``settings`` to :func:`app_from_env` in a worker."""
    payload = {"settings": settings.model_dump(mode="json"), "log_level": log_level}
    return {SETTINGS_ENV: json.dumps(payload)}


def limit_faiss_threads() -> None:
    """One faiss thread per process: each request is one query, and OpenMP threads would only
    spin against the other workers for the same cores."""
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:
        pass


def app_from_env() -> FastAPI:
    """The app of one worker: settings from :data:`SETTINGS_ENV`, else ``FUSIONREC_*``."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        settings = ServeSettings.from_env()
    else:
        try:
            payload = json.loads(raw)
            settings = ServeSettings.model_validate(payload["settings"])
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{SETTINGS_ENV}: not the settings fusionrec serve writes ({e})") from None
        level = logging.getLevelName(str(payload.get("log_level", "info")).upper())
        if isinstance(level, int):
            logging.getLogger("fusionrec").setLevel(level)
    limit_faiss_threads()
    return create_app(settings)
