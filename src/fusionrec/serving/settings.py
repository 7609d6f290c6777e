"""Service settings: from arguments, or from ``FUSIONREC_*`` environment variables.

Only the service reads the environment (``ServeSettings.from_env``); the library never does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fusionrec.errors import ConfigError

__all__ = ["ServeSettings", "default_events_url"]


def default_events_url(env: Mapping[str, str] | None = None) -> str:
    """SQLite file ``$FUSIONREC_HOME/serving.db`` (``~/.cache/fusionrec`` by default)."""
    env = os.environ if env is None else env
    home = Path(env.get("FUSIONREC_HOME") or Path.home() / ".cache" / "fusionrec")
    return f"sqlite:///{home / 'serving.db'}"


class ServeSettings(BaseModel):
    """Everything the recommendation service needs to start."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    model_dir: Path | None = None
    """Saved model folder to serve (ignored when ``registry`` holds versions)."""
    registry: Path | None = None
    """Model registry folder with one saved model per version sub-folder ``<registry>/<version>/``;
    the newest version (natural sort of folder names) is served and new ones are picked up."""
    registry_poll_s: float = Field(5.0, gt=0)
    """Seconds between two looks at the registry folder."""
    dataset: str | None = None
    """Optional dataset name or saved-dataset folder whose item table gives titles and genres
    when the model folder has no ``catalog.parquet``."""
    events_url: str = Field(default_factory=default_events_url)
    """SQLAlchemy URL of the event and API-key store (SQLite file or PostgreSQL)."""
    host: str = "127.0.0.1"
    """Interface uvicorn binds to."""
    port: int = Field(8000, ge=0, le=65535)
    """TCP port uvicorn listens on."""
    max_body_bytes: int = Field(64 * 1024, ge=256)
    """Requests with a larger body are refused with 413."""
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    """Requests whose header lines add up to more bytes are refused with 431 (before any key check)."""
    max_k: int = Field(200, ge=1, le=1000)
    """Largest ``k`` a request may ask for."""
    cache_size: int = Field(10_000, ge=0)
    """Entries in the LRU cache of recent answers (0 disables it)."""
    ann_threshold: int = Field(50_000, ge=0)
    """Embedding models with more items than this are searched through an approximate index."""
    ann_kind: str = Field("ivf", pattern="^(ivf|hnsw)$")
    """Approximate index type: ``ivf`` (IVF-Flat, inner product) or ``hnsw``."""
    ann_nprobe: int = Field(32, ge=1)
    """IVF lists visited per query (or HNSW efSearch)."""
    ann_candidates: int = Field(200, ge=10)
    """Candidates fetched from the index before exact re-ranking."""
    ann: bool = False
    """Serve every model with user and item vectors (bpr, lightgcn, two_tower, lm_mf, cke, ...)
    through an approximate ``ann_kind`` index whatever its catalogue size (``fusionrec serve
    --ann``); off: only catalogues above ``ann_threshold``. Candidates are re-ranked exactly."""
    mmap_model: bool = True
    """Serve the model's arrays (embedding tables, EASE's B, the training interactions) and the
    saved ANN index memory-mapped from the model folder, so worker processes share one copy."""
    workers: int = Field(1, ge=1, le=64)
    """uvicorn worker processes (``fusionrec serve --workers N``), each with the model loaded
    read-only from the same memory-mapped files."""
    sync_file: Path | None = None
    """Small shared file through which the worker processes of one server tell each other that
    feedback was stored (``fusionrec serve`` sets it when ``workers`` > 1); each worker then
    drops the cached answers and feedback items of the users concerned before it answers."""
    key_cache_s: float = Field(1.0, ge=0)
    """Seconds a successful API-key check is remembered in memory (0: check the database every time);
    a key revoked from another process stops working at most this long after."""
    events_cache_size: int = Field(100_000, ge=0)
    """Users whose feedback item ids are held in memory (0: read the database on every request).
    This service's own feedback updates them at once; events another process writes into the
    database reach a user held in memory after a model reload."""
    gc_freeze: bool = True
    """After each model (re)load, collect garbage once and move every object then alive out of
    the garbage collector's sight (``gc.freeze``): a million-item model makes a full collection
    take hundreds of milliseconds, which would otherwise land in some request's latency."""
    log_secret: str | None = None
    """Key of the hash that pseudonymises user ids in logs (random per process when unset)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServeSettings:
        """Settings from ``FUSIONREC_<FIELD>`` variables; explicit ``overrides`` (not None) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = f"FUSIONREC_{name.upper()}"
            if key in env and env[key] != "":
                values[name] = env[key]
        if "events_url" not in values and "FUSIONREC_EVENTS" in env:
            values["events_url"] = env["FUSIONREC_EVENTS"]
        if "events_url" not in values:
            values["events_url"] = default_events_url(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as e:
            msg = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise ConfigError(f"invalid service settings: {msg}") from None
