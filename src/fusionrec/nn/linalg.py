"""Dense linear algebra for the closed-form models, through torch (MKL on CPU, CUDA on a GPU).

Why not numpy: numpy's bundled OpenBLAS (0.3.31 in numpy 2.4) segfaults in multi-threaded dense
products of about 24k x 24k on some CPUs (a bare SIGSEGV, no message); torch's MKL path does the
same work without crashing and faster. Every helper here first estimates the memory it will
allocate and refuses, with :class:`~fusionrec.errors.InsufficientMemoryError`, a job that would
not fit, so a too-large catalogue fails in a second with a message instead of swapping or being
killed.

- :func:`resolve_device`, :func:`torch_dtype`: "auto"/"cpu"/"cuda[:N]" and "float32"/"float64".
- :func:`available_memory`, :func:`require_memory`, :func:`format_bytes`: the memory check.
- :func:`sparse_gram`: the dense item x item Gram matrix XᵀX of a sparse user x item matrix,
  built block by block (scipy's sparse product per block of items, then copied into one torch
  tensor), so no temporary larger than one block exists beside the result.
- :func:`spd_inverse`: (A)⁻¹ of a symmetric positive-definite matrix by Cholesky, in place.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from fusionrec.errors import ConfigError, InsufficientMemoryError

__all__ = [
    "GRAM_BLOCK_BYTES",
    "DenseDtype",
    "available_memory",
    "format_bytes",
    "require_memory",
    "resolve_device",
    "sparse_gram",
    "spd_inverse",
    "torch_dtype",
]

DenseDtype = Literal["float32", "float64"]

#: Share of the available memory a job may plan to use (the rest is headroom for the process,
#: the allocator's slack and other programs).
MEMORY_HEADROOM = 0.9
#: Dense entries (floats) materialised per block while building a Gram matrix.
_GRAM_BLOCK_ENTRIES = 8_000_000
#: Bytes one such block can hold at once (scipy's sparse product: 12 B per entry; its dense
#: copy: 8 B; the torch copy: up to 8 B).
GRAM_BLOCK_BYTES = 28 * _GRAM_BLOCK_ENTRIES


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> the first CUDA device when present, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but torch sees no CUDA device")
    return dev


def torch_dtype(name: str) -> torch.dtype:
    """'float32' or 'float64' -> the torch dtype."""
    if name == "float32":
        return torch.float32
    if name == "float64":
        return torch.float64
    raise ConfigError(f"dense dtype must be 'float32' or 'float64', got {name!r}")


def format_bytes(n: float) -> str:
    """Human-readable size in powers of 1024 (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def _cpu_available() -> int:
    """Bytes of RAM available to this process: MemAvailable, capped by a cgroup limit."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            import psutil  # only where neither /proc nor sysconf answers

            avail = int(psutil.virtual_memory().available)
    for limit_f, usage_f in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            with open(limit_f) as fh:
                raw = fh.read().strip()
            if raw == "max":
                continue
            with open(usage_f) as fh:
                used = int(fh.read().strip())
            avail = min(avail, max(int(raw) - used, 0))
        except (OSError, ValueError):
            continue
    return int(avail)


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes free now on ``device``: the CUDA device's free memory, or the RAM available."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    return _cpu_available()


def require_memory(
    need: int, what: str, device: torch.device | str = "cpu", hint: str = ""
) -> None:
    """Raise InsufficientMemoryError when ``need`` bytes exceed ``MEMORY_HEADROOM`` of what
    ``device`` has free; ``what`` names the job, ``hint`` what the user can change."""
    dev = resolve_device(device)
    have = available_memory(dev)
    if need > MEMORY_HEADROOM * have:
        where = "GPU memory" if dev.type == "cuda" else "RAM"
        msg = (
            f"{what} needs about {format_bytes(need)} of {where}; {format_bytes(have)} is "
            f"available on {dev} (at most {MEMORY_HEADROOM:.0%} of it is used)"
        )
        raise InsufficientMemoryError(msg + (f". {hint}" if hint else ""))


def sparse_gram(
    x: sp.spmatrix,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    block_entries: int = _GRAM_BLOCK_ENTRIES,
) -> torch.Tensor:
    """Dense ``XᵀX`` (n_items x n_items) of a sparse user x item matrix, as a torch tensor.

    Built by blocks of item rows: ``X[:, a:b]ᵀ X`` by scipy's sparse product (exact integer
    counts for a binary X, in float64), written into the preallocated result. The caller checks
    the memory of the result (:func:`require_memory`); a block adds at most ``block_entries``
    float64 values.
    """
    x = sp.csr_matrix(x, dtype=np.float64)
    n = x.shape[1]
    dev = resolve_device(device)
    out = torch.zeros((n, n), dtype=dtype, device=dev)
    xt = x.T.tocsr()
    rows = max(1, block_entries // max(n, 1))
    for a in range(0, n, rows):
        b = min(n, a + rows)
        block = (xt[a:b] @ x).toarray()
        out[a:b] = torch.from_numpy(block).to(device=dev, dtype=dtype)
    return out


def spd_inverse(a: torch.Tensor, what: str = "matrix") -> torch.Tensor:
    """Inverse of the symmetric positive-definite ``a`` through its Cholesky factor, written
    over ``a`` (returns ``a``; peak memory is two matrices). Raises ConfigError when ``a`` is not
    positive definite (e.g. a regularisation of 0 on an item nobody interacted with)."""
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ConfigError(f"{what} must be a square matrix, got shape {tuple(a.shape)}")
    info = torch.empty((), dtype=torch.int32, device=a.device)
    torch.linalg.cholesky_ex(a, out=(a, info))
    if int(info) != 0:
        raise ConfigError(
            f"{what} is not positive definite (Cholesky failed at column {int(info)}); "
            "increase the regularisation"
        )
    torch.cholesky_inverse(a, out=a)
    return a
