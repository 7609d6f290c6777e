"""The per-app service object: stores, cache, metrics and the current model state (swapped atomically)."""

from __future__ import annotations

import gc
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

from fusionrec.data.dataset import Dataset
from fusionrec.errors import FusionRecError, ModelStateError
from fusionrec.serving.auth import KeyCheck, KeyStore, pseudonymize
from fusionrec.serving.cache import AnswerCache
from fusionrec.serving.db import make_engine
from fusionrec.serving.engine import ModelState, latest_version
from fusionrec.serving.events import EventStore
from fusionrec.serving.metrics import Metrics
from fusionrec.serving.settings import ServeSettings
from fusionrec.serving.worker_sync import (
    ChangeCounter,
    SyncedAnswerCache,
    changed_users,
    last_event_id,
)

__all__ = ["Service"]

log = logging.getLogger("fusionrec.serving")


class Service:
    """Everything a request needs besides its body. ``state`` is replaced whole on reload."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.events_url)
        self.events = EventStore(self.engine)
        self.keys = KeyStore(self.engine)
        # several workers (``settings.sync_file``): a shared counter tells this one that another
        # stored feedback, and the caches below are brought up to date before they are read
        self._sync = None if settings.sync_file is None else ChangeCounter(settings.sync_file)
        self._sync_lock = threading.Lock()
        self._sync_seen = 0 if self._sync is None else self._sync.value()
        self._synced_id = 0 if self._sync is None else last_event_id(self.engine)
        self.cache = (
            AnswerCache(settings.cache_size)
            if self._sync is None
            else SyncedAnswerCache(settings.cache_size, self.sync_workers)
        )
        self.metrics = Metrics()
        self.state: ModelState | None = None
        self._reload_lock = threading.Lock()
        self._secret = (
            settings.log_secret.encode() if settings.log_secret else secrets.token_bytes(32)
        )
        self._dataset: Dataset | None = None
        # key id -> (checked at, sha256 of the full presented key, check)
        self._key_cache: dict[str, tuple[float, bytes, KeyCheck]] = {}
        # user id -> item ids of the user's feedback events (see ``event_items``)
        self._events_cache: OrderedDict[str, list[str]] = OrderedDict()
        self._events_lock = threading.Lock()
        self._events_gen = 0
        self._event_users: set[str] | None = None  # users with any stored event
        #: The last failed (re)load: (folder, reason, time); None after a successful one.
        self.load_error: tuple[str, str, float] | None = None
        self._failed_sources: dict[str, tuple] = {}  # folder -> file signature at its failure
        #: Requests in a row that failed inside the model (reset by any success or a reload).
        self.consecutive_failures = 0
        self.last_failure: str | None = None

    # ----------------------------------------------------------- API keys
    def cached_key(self, presented: str) -> KeyCheck | None:
        """The remembered successful check of ``presented`` (younger than ``key_cache_s``), else None.

        The cache is found by the key's public id and the presented key is compared with the
        remembered one by its SHA-256 digest through :func:`hmac.compare_digest`, so a lookup
        takes the same time whatever the secret's first differing character.
        """
        ttl = self.settings.key_cache_s
        if ttl <= 0:
            return None
        parts = presented.split("_", 2)
        hit = self._key_cache.get(parts[1]) if len(parts) == 3 else None
        if hit is None or time.monotonic() - hit[0] >= ttl:
            return None
        if not hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), hit[1]):
            return None
        return hit[2]

    def check_key(self, presented: str) -> KeyCheck:
        """``KeyStore.check`` with successful checks remembered for ``key_cache_s`` seconds;
        a revoked or unknown answer drops what was remembered for that key id."""
        hit = self.cached_key(presented)
        if hit is not None:
            return hit
        check = self.keys.check(presented)
        parts = presented.split("_", 2)
        if len(parts) != 3:
            return check
        if check.status == "ok" and self.settings.key_cache_s > 0:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            digest = hashlib.sha256(presented.encode()).digest()
            self._key_cache[parts[1]] = (time.monotonic(), digest, check)
        elif check.status == "revoked":
            # only a verified revocation drops the remembered check: a wrong secret presented
            # with a real key id must not evict the real key's entry
            self._key_cache.pop(parts[1], None)
        return check

    def revoke_key(self, key_id: str):
        """Revoke a key and forget its remembered check at once (other processes: ``key_cache_s``)."""
        info = self.keys.revoke(key_id)
        self._key_cache.pop(key_id, None)
        return info

    # ----------------------------------------------------------- feedback events
    def sync_workers(self) -> None:
        """Drop what memory holds for users whose feedback another worker stored since this one
        last looked (``serving/worker_sync.py``); one 8-byte read when nothing changed."""
        if self._sync is None or self._sync.value() == self._sync_seen:
            return
        with self._sync_lock:
            seen = self._sync.value()
            if seen == self._sync_seen:
                return
            users, last = changed_users(self.engine, self._synced_id)
            with self._events_lock:
                self._events_gen += 1
                for u in users:
                    self._events_cache.pop(u, None)
                if self._event_users is not None:
                    self._event_users.update(users)
            for u in users:
                self.cache.invalidate_user(u)
            self._synced_id, self._sync_seen = last, seen

    def cached_event_items(self, user_id: str) -> list[str] | None:
        """The user's feedback item ids when held in memory, else None (then call ``event_items``)."""
        if self.settings.events_cache_size <= 0:
            return None
        self.sync_workers()
        with self._events_lock:
            if self._event_users is not None and user_id not in self._event_users:
                return []
            got = self._events_cache.get(user_id)
            if got is not None:
                self._events_cache.move_to_end(user_id)
            return got

    def event_items(self, user_id: str) -> list[str]:
        """Item ids the user gave feedback on, oldest first (memory, else the database).

        Up to ``events_cache_size`` users are held in memory, and the set of users with any
        stored event answers "none" without a query; ``add_event`` drops the user's entry, and a
        read that raced with a write is not kept (generation check)."""
        size = self.settings.events_cache_size
        if size > 0 and self._event_users is None:
            self._load_event_users()
        got = self.cached_event_items(user_id)
        if got is not None:
            return got
        gen = self._events_gen
        items = self.events.items_for_user(user_id)
        if size > 0:
            with self._events_lock:
                if gen == self._events_gen:
                    self._events_cache[user_id] = items
                    while len(self._events_cache) > size:
                        self._events_cache.popitem(last=False)
        return items

    def add_event(
        self, user_id: str, item_id: str, event: str, value: float | None, ts: float | None
    ) -> int:
        """Store one event durably, then drop what memory held for the user (events and answers)."""
        eid = self.events.add(user_id, item_id, event, value, ts)
        with self._events_lock:
            self._events_gen += 1
            self._events_cache.pop(user_id, None)
            if self._event_users is not None:
                self._event_users.add(str(user_id))
        self.cache.invalidate_user(user_id)
        if self._sync is not None:
            self._sync.bump()
        return eid

    def _load_event_users(self) -> None:
        gen = self._events_gen
        users = self.events.users()
        with self._events_lock:
            if gen == self._events_gen:
                self._event_users = users

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
        """Load and validate the version in ``path``; every failure is a ModelStateError."""
        s = self.settings
        try:
            return ModelState.load(
                path,
                version=path.name,
                dataset=self._catalog_dataset(),
                ann_threshold=s.ann_threshold,
                ann_kind=s.ann_kind,
                ann_nprobe=s.ann_nprobe,
                ann=s.ann,
                mmap=s.mmap_model,
                ann_mmap=s.mmap_model,
            )
        except FusionRecError:
            raise
        except Exception as e:  # a broken version must be refused, never served or raised raw
            raise ModelStateError(f"{path}: cannot load ({type(e).__name__}: {e})") from None

    def record_failure(self, reason: str) -> None:
        """A request failed inside the model (``/readyz`` turns 503 after three in a row)."""
        self.consecutive_failures += 1
        self.last_failure = reason

    def record_success(self) -> None:
        if self.consecutive_failures:
            self.consecutive_failures = 0

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
            except Exception as e:
                self.metrics.reloads.labels("error").inc()
                self.load_error = (str(path), str(e), time.time())
                self._failed_sources[str(path)] = _signature(Path(path))
                raise
            previous = None if self.state is None else self.state.version
            self.state = new  # the atomic swap: one reference assignment
            self.load_error = None
            self._failed_sources.pop(str(path), None)
            self.consecutive_failures, self.last_failure = 0, None
            self.cache.clear()
            with self._events_lock:  # a reload also re-reads events written by other processes
                self._events_gen += 1
                self._events_cache.clear()
                self._event_users = None
            if self.settings.events_cache_size > 0:
                self._load_event_users()
            if self.settings.gc_freeze:
                gc.unfreeze()
                gc.collect()
                gc.freeze()
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
        failed = self._failed_sources.get(str(latest))
        if failed is not None and failed == _signature(latest):
            return False  # refused before and unchanged since: no new attempt until it changes
        self.reload(latest)
        return True

    # ----------------------------------------------------------- misc
    def pseudo(self, user_id: object) -> str:
        """Keyed hash of a user id for logs."""
        return pseudonymize(user_id, self._secret)

    def close(self) -> None:
        if self.settings.gc_freeze:
            gc.unfreeze()
        self.engine.dispose()
        if self._sync is not None:
            self._sync.close()


def _signature(folder: Path) -> tuple:
    """(name, size, mtime) of the files of a version folder, to notice that it changed."""
    try:
        return tuple(
            sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())
        )
    except OSError:
        return ()
