"""Nearest-neighbour retrieval over item vectors by inner product (faiss).

Below ``threshold`` items the search is exact (a flat index); above it an IVF-Flat or HNSW
index answers approximately. The index can be saved beside the model (``ann.faiss``, faiss'
own binary format, not pickle) so a restart does not rebuild it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["AnnIndex", "ANN_FILE"]

ANN_FILE = "ann.faiss"


class AnnIndex:
    """Top-n search of item indices by inner product with a query vector."""

    def __init__(self, index, exact: bool, kind: str, nprobe: int) -> None:
        self.index = index
        self.exact = exact
        self.kind = kind
        self.nprobe = nprobe
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
        nlist = int(max(1, min(max(16, 4 * np.sqrt(n)), 8192, n)))  # never more lists than items
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
        tmp = path.with_name(f".{path.name}.tmp")
        faiss.write_index(self.index, str(tmp))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, n_items: int, dim: int, nprobe: int = 32) -> AnnIndex | None:
        """The saved index, or None when it is unreadable or does not match the model's item
        vectors (the caller then builds a new one)."""
        import faiss

        try:
            index = faiss.read_index(str(path))
        except Exception:  # faiss raises RuntimeError (and others) for a damaged file
            return None
        if not isinstance(index, (faiss.IndexFlat, faiss.IndexIVF, faiss.IndexHNSW)):
            return None
        if index.ntotal != n_items or index.d != dim or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            return None
        kind = (
            "ivf"
            if isinstance(index, faiss.IndexIVF)
            else "hnsw"
            if isinstance(index, faiss.IndexHNSW)
            else "flat"
        )
        return cls(index, kind == "flat", kind, nprobe)
