"""Nearest-neighbour retrieval over item vectors by inner product (faiss).

Below ``threshold`` items the search is exact (a flat index); above it an IVF-Flat or HNSW
index answers approximately. The index can be saved beside the model (``ann.faiss``, faiss'
own binary format, not pickle) so a restart does not rebuild it.

A saved index is read memory-mapped (``mmap=True``): IVF inverted lists through faiss'
``IO_FLAG_MMAP``, the stored vectors of HNSW and flat indexes through ``IO_FLAG_MMAP_IFC``. The
pages then belong to the page cache, so the worker processes of one server share one copy
(only the HNSW graph links stay private). :func:`load_or_build` lets the first worker build and
save the index while the others wait on a lock of the model folder, then every worker maps
the saved file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["AnnIndex", "ANN_FILE", "load_or_build"]

ANN_FILE = "ann.faiss"


class AnnIndex:
    """Top-n search of item indices by inner product with a query vector."""

    def __init__(self, index, exact: bool, kind: str, nprobe: int, mapped: bool = False) -> None:
        self.index = index
        self.exact = exact
        self.kind = kind
        self.nprobe = nprobe
        self.mapped = mapped
        """Whether the index was read memory-mapped from a saved file (shared between processes)."""
        self._set_search_params()

    @classmethod
    def build(
        cls,
        item_vectors: np.ndarray,
        threshold: int = 50_000,
        kind: str = "ivf",
        nprobe: int = 32,
        seed: int = 0,
    ) -> AnnIndex:
        """Exact index for at most ``threshold`` items, else an approximate one of ``kind``."""
        import faiss

        x = np.ascontiguousarray(item_vectors, dtype=np.float32)
        n, d = x.shape
        if n <= threshold:
            index = faiss.IndexFlatIP(d)
            index.add(x)
            return cls(index, True, "flat", nprobe)
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 40
            index.add(x)
            return cls(index, False, "hnsw", nprobe)
        # never more lists than items, and at least 39 training points per list (faiss warns
        # below that: the k-means centroids are then noise)
        nlist = int(max(1, min(max(16, 4 * np.sqrt(n)), 8192, n // 39)))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = x[rng.choice(n, size=min(n, nlist * 30), replace=False)]
        index.cp.seed = seed
        index.cp.niter = 10
        index.train(sample)
        index.add(x)
        return cls(index, False, "ivf", nprobe)

    def _set_search_params(self) -> None:
        if self.kind == "ivf":
            self.index.nprobe = self.nprobe
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = max(self.nprobe, 16)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices (-1 = none) and inner products, best first, shape (len(queries), n)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        scores, idx = self.index.search(q, max(1, min(n, self.size)))
        idx = idx.astype(np.int64)
        idx[(idx < 0) | (idx >= self.size)] = -1  # a tampered index may name items it lacks
        return idx, scores

    def save(self, path: str | Path) -> Path:
        import faiss

        path = Path(path)
        # one temp name per process: workers saving at once never write into each other's file
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            faiss.write_index(self.index, str(tmp))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        n_items: int,
        dim: int,
        nprobe: int = 32,
        kind: str | None = None,
        mmap: bool = False,
    ) -> AnnIndex | None:
        """The saved index, or None when it is unreadable, does not match the model's item
        vectors, or is not of ``kind`` ("flat", "ivf", "hnsw"; None: any) — the caller then
        builds a new one. ``mmap`` reads it memory-mapped (see the module docstring)."""
        import faiss

        flags = 0
        if mmap:
            flags = faiss.IO_FLAG_MMAP if kind == "ivf" else faiss.IO_FLAG_MMAP_IFC
        try:
            index = faiss.read_index(str(path), flags)
        except Exception:  # faiss raises RuntimeError (and others) for a damaged file
            return None
        if not isinstance(index, (faiss.IndexFlat, faiss.IndexIVF, faiss.IndexHNSW)):
            return None
        if index.ntotal != n_items or index.d != dim or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            return None
        got = (
            "ivf"
            if isinstance(index, faiss.IndexIVF)
            else "hnsw"
            if isinstance(index, faiss.IndexHNSW)
            else "flat"
        )
        if kind is not None and got != kind:
            return None
        return cls(index, got == "flat", got, nprobe, mapped=bool(flags))


def expected_kind(n_items: int, threshold: int, kind: str) -> str:
    """The index :meth:`AnnIndex.build` makes for ``n_items``: "flat" up to ``threshold``."""
    return "flat" if n_items <= threshold else kind


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on a folder (flock on its descriptor; no lock file is left);
    a no-op where the folder cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def load_or_build(
    item_vectors: np.ndarray,
    path: str | Path | None = None,
    *,
    threshold: int = 50_000,
    kind: str = "ivf",
    nprobe: int = 32,
    save: bool = True,
    mmap: bool = True,
) -> AnnIndex:
    """The index of ``item_vectors``: the saved one at ``path`` when it matches, else built
    (and saved there when ``save``; a read-only folder keeps it in memory). Processes
    serving the same folder build it once: the builder holds a lock of the folder and the
    others then read what it saved."""
    n, dim = item_vectors.shape
    want = expected_kind(n, threshold, kind)
    if path is None:
        return AnnIndex.build(item_vectors, threshold=threshold, kind=kind, nprobe=nprobe)
    path = Path(path)
    found = AnnIndex.load(path, n, dim, nprobe, kind=want, mmap=mmap) if path.exists() else None
    if found is not None:
        return found
    with _folder_lock(path.parent):
        if path.exists():  # another process may have saved it while this one waited
            found = AnnIndex.load(path, n, dim, nprobe, kind=want, mmap=mmap)
            if found is not None:
                return found
        built = AnnIndex.build(item_vectors, threshold=threshold, kind=kind, nprobe=nprobe)
        if not save:
            return built
        try:
            built.save(path)
        except (OSError, RuntimeError):  # a read-only model folder: keep the index in memory
            return built
    if mmap:  # serve the saved file mapped (shared with other workers), not the private copy
        return AnnIndex.load(path, n, dim, nprobe, kind=want, mmap=True) or built
    return built
