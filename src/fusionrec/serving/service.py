"""The per-app service object: stores, cache, metrics and the current model state (swapped atomically)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ModelStateError
from fusionrec.serving.auth import KeyCheck, KeyStore, pseudonymize
from fusionrec.serving.cache import AnswerCache
from fusionrec.serving.db import make_engine
from fusionrec.serving.engine import ModelState, latest_version
from fusionrec.serving.events import EventStore
from fusionrec.serving.metrics import Metrics
from fusionrec.serving.settings import ServeSettings

__all__ = ["Service"]

log = logging.getLogger("fusionrec.serving")


class Service:
    """Everything a request needs besides its body. ``state`` is replaced whole on reload."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.events_url)
        self.events = EventStore(self.engine)
        self.keys = KeyStore(self.engine)
        self.cache = AnswerCache(settings.cache_size)
        self.metrics = Metrics()
        self.state: ModelState | None = None
        self._reload_lock = threading.Lock()
        self._secret = (
            settings.log_secret.encode() if settings.log_secret else secrets.token_bytes(32)
        )
        self._dataset: Dataset | None = None
        self._key_cache: dict[str, tuple[float, KeyCheck]] = {}

    def check_key(self, presented: str) -> KeyCheck:
        """``KeyStore.check`` with successful checks remembered for ``key_cache_s`` seconds."""
        ttl = self.settings.key_cache_s
        now = time.monotonic()
        hit = self._key_cache.get(presented) if ttl > 0 else None
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        check = self.keys.check(presented)
        if check.status == "ok" and ttl > 0:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            self._key_cache[presented] = (now, check)
        else:
            self._key_cache.pop(presented, None)
        return check

    # ----------------------------------------------------------- model
    def source(self) -> Path | None:
        """Folder the next (re)load reads: newest registry version, else ``model_dir``."""
        if self.settings.registry is not None:
            latest = latest_version(self.settings.registry)
            if latest is not None:
                return latest
        return self.settings.model_dir

    def _catalog_dataset(self) -> Dataset | None:
        if self.settings.dataset is None:
            return None
        if self._dataset is None:
            p = Path(self.settings.dataset)
            if p.is_dir():
                self._dataset = Dataset.load(p)
            else:
                from fusionrec.data import load_dataset  # type: ignore[attr-defined]

                self._dataset = load_dataset(self.settings.dataset)
        return self._dataset

    def build_state(self, path: Path) -> ModelState:
        s = self.settings
        return ModelState.load(
            path,
            version=path.name,
            dataset=self._catalog_dataset(),
            ann_threshold=s.ann_threshold,
            ann_kind=s.ann_kind,
            ann_nprobe=s.ann_nprobe,
        )

    def reload(self, path: Path | None = None) -> tuple[ModelState, str | None, float]:
        """Build the new state completely, then swap the one reference; the cache is cleared."""
        path = path or self.source()
        if path is None:
            raise ModelStateError(
                "no model to load: give --model-dir or a --registry with a version folder"
            )
        with self._reload_lock:
            t0 = time.perf_counter()
            try:
                new = self.build_state(Path(path))
            except Exception:
                self.metrics.reloads.labels("error").inc()
                raise
            previous = None if self.state is None else self.state.version
            self.state = new  # the atomic swap: one reference assignment
            self.cache.clear()
            self.metrics.set_model(new.name, new.version)
            self.metrics.reloads.labels("ok").inc()
            secs = time.perf_counter() - t0
        log.info("serving model %s version %s (from %s, %.2fs)", new.name, new.version, path, secs)
        return new, previous, secs

    def poll_registry(self) -> bool:
        """Reload when the registry's newest version differs from the one served."""
        if self.settings.registry is None:
            return False
        latest = latest_version(self.settings.registry)
        if latest is None or (self.state is not None and self.state.path == str(latest)):
            return False
        self.reload(latest)
        return True

    # ----------------------------------------------------------- misc
    def pseudo(self, user_id: object) -> str:
        """Keyed hash of a user id for logs."""
        return pseudonymize(user_id, self._secret)

    def close(self) -> None:
        self.engine.dispose()
