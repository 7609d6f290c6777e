"""Validation of a saved model folder before anything in it is trusted.

``load_model`` calls :func:`check_model_folder` first, so a malformed folder (half copied,
truncated ``state.safetensors``, a missing ``users.npy``, a ``config.json`` that is not an
object, ids that do not match the saved arrays) raises :class:`ModelStateError` naming the
file and the problem instead of a raw exception. Only headers are read here (numpy's ``.npy``
header, the safetensors JSON header), so the check costs no array loads. :func:`loading`
turns what a model's own ``_set_state``/``_load_files`` raise on a damaged folder into the
same error, and :func:`smoke_check` scores one user to catch state whose shapes disagree with
the ids (the service runs it before swapping a version in).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.errors import FusionRecError, ModelStateError

if TYPE_CHECKING:
    from fusionrec.models.base import Recommender

__all__ = [
    "check_model_folder",
    "read_config",
    "loading",
    "smoke_check",
    "member_folder",
    "nested_load",
    "STATE_FILE",
]

STATE_FILE = "state.safetensors"
_ST_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}
_MAX_HEADER = 100 * 1024 * 1024


def _bad(path: Path, problem: str) -> ModelStateError:
    return ModelStateError(f"{path}: {problem}")


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` as a dict with a string ``model`` and an object ``params``."""
    p = folder / "config.json"
    if not folder.is_dir():
        raise ModelStateError(f"{folder} is not a saved fusionrec model (no such folder)")
    if not p.is_file():
        raise ModelStateError(f"{folder} is not a saved fusionrec model (config.json missing)")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(p, f"not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise _bad(p, f"must hold a JSON object, got {type(meta).__name__}")
    if not isinstance(meta.get("model"), str) or not meta["model"]:
        raise _bad(p, "lacks the model name ('model': a non-empty string)")
    if not isinstance(meta.get("params"), dict):
        raise _bad(p, f"'params' must be an object, got {type(meta.get('params')).__name__}")
    fv = meta.get("format_version", 0)
    if isinstance(fv, bool) or not isinstance(fv, int):
        raise _bad(p, f"'format_version' must be an integer, got {fv!r}")
    for key in ("n_users", "n_items"):
        v = meta.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise _bad(p, f"{key!r} must be a non-negative integer, got {v!r}")
    return meta


def _npy_shape(p: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header; the file size must match (no truncation)."""
    if not p.is_file():
        raise _bad(p, "missing (a half-copied model folder?)")
    try:
        with p.open("rb") as f:
            major, _ = np.lib.format.read_magic(f)
            if major == 1:
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except (ValueError, OSError, SyntaxError) as e:
        raise _bad(p, f"not a valid .npy file ({e})") from None
    if dtype.hasobject:
        raise _bad(p, "holds Python objects (pickle), which fusionrec never loads")
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = p.stat().st_size
    if size < need:
        raise _bad(p, f"truncated: {size} bytes, its header promises {need}")
    return tuple(int(x) for x in shape), dtype


def _safetensors_shapes(p: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from a safetensors header, checking that every tensor's bytes are there."""
    if not p.is_file():
        raise _bad(p, "missing (a half-copied model folder?)")
    size = p.stat().st_size
    try:
        with p.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise _bad(p, f"truncated: {size} bytes, not even a header length")
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, _MAX_HEADER):
                raise _bad(p, f"truncated or corrupt: header of {n} bytes in a {size}-byte file")
            header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(p, f"corrupt header ({e})") from None
    if not isinstance(header, dict):
        raise _bad(p, "corrupt header (not an object)")
    data = size - 8 - n
    shapes: dict[str, tuple[int, ...]] = {}
    end_max = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (lo, hi) = t["dtype"], [int(x) for x in t["shape"]], t["data_offsets"]
            width = _ST_BYTES[dtype]
        except (KeyError, TypeError, ValueError):
            raise _bad(p, f"corrupt header entry for tensor {name!r}") from None
        if hi - lo != int(np.prod(shape, dtype=np.int64)) * width or lo < 0:
            raise _bad(p, f"corrupt header: tensor {name!r} of shape {shape} spans {hi - lo} bytes")
        end_max = max(end_max, hi)
        shapes[name] = tuple(shape)
    if end_max > data:
        raise _bad(p, f"truncated: {data} bytes of tensor data, its header promises {end_max}")
    return shapes


def check_model_folder(folder: str | Path) -> dict[str, Any]:
    """Check a saved model folder's files and their agreement; returns ``config.json``.

    Checks: ``config.json`` is an object naming a model; ``users.npy``/``items.npy`` are
    complete 1-D arrays without pickled objects; ``state.safetensors`` is complete; the seen
    matrix and popularity arrays match the number of users and items, as do the config's
    ``n_users``/``n_items`` and ``item_titles.npy`` when present."""
    folder = Path(folder)
    meta = read_config(folder)
    lengths = {}
    for kind in ("users", "items"):
        p = folder / f"{kind}.npy"
        shape, _ = _npy_shape(p)
        if len(shape) != 1:
            raise _bad(p, f"must be a 1-D array of ids, got shape {shape}")
        lengths[kind] = shape[0]
        saved = meta.get(f"n_{kind}")
        if saved is not None and saved != shape[0]:
            raise _bad(p, f"holds {shape[0]} ids but config.json says n_{kind}={saved}")
    n_users, n_items = lengths["users"], lengths["items"]
    tp = folder / "item_titles.npy"
    if tp.exists():
        shape, _ = _npy_shape(tp)
        if shape != (n_items,):
            raise _bad(tp, f"has shape {shape}, expected ({n_items},) like items.npy")
    sp_ = folder / STATE_FILE
    shapes = _safetensors_shapes(sp_)
    expect = {"_seen_indptr": (n_users + 1,), "_item_pop": (n_items,)}
    for key, want in expect.items():
        got = shapes.get(key)
        if got is None:
            raise _bad(sp_, f"lacks the array {key!r}")
        if got != want:
            raise _bad(
                sp_,
                f"{key!r} has shape {got}, expected {want} for {n_users} users and {n_items} items",
            )
    if "_seen_indices" not in shapes or len(shapes["_seen_indices"]) != 1:
        raise _bad(sp_, "lacks the 1-D array '_seen_indices'")
    return meta


@contextmanager
def loading(folder: str | Path) -> Iterator[None]:
    """Re-raise what restoring a model from ``folder`` raises as ModelStateError naming it."""
    try:
        yield
    except FusionRecError:
        raise
    except (
        KeyError,
        ValueError,
        TypeError,
        IndexError,
        RuntimeError,
        OSError,
        AttributeError,
    ) as e:
        what = f"missing state array {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise ModelStateError(
            f"{folder}: the saved state does not fit the model ({what})"
        ) from None


def _seen_check(model: Recommender, folder: Path) -> None:
    s = model.seen_
    if len(s.indices) and (int(s.indices.min()) < 0 or int(s.indices.max()) >= model.n_items):
        raise _bad(folder / STATE_FILE, "'_seen_indices' points outside the items")
    ip = s.indptr
    if ip[0] != 0 or ip[-1] != len(s.indices) or (len(ip) > 1 and (np.diff(ip) < 0).any()):
        raise _bad(folder / STATE_FILE, "'_seen_indptr' is not a valid row pointer")


def smoke_check(model: Recommender, folder: str | Path | None = None) -> None:
    """Score one known user and one ad-hoc pair: the shapes must match the ids, the scores
    must not be NaN. Raises ModelStateError naming ``folder`` and the problem."""
    where = "the model" if folder is None else str(folder)
    if folder is not None:
        _seen_check(model, Path(folder))
    if model.n_users == 0 or model.n_items == 0:
        raise ModelStateError(f"{where}: a model without users or items cannot serve")
    with loading(where):
        full = np.asarray(model.score_indices(np.array([0], dtype=np.int64)))
        if full.shape != (1, model.n_items):
            raise ModelStateError(
                f"{where}: scores have shape {full.shape}, expected (1, {model.n_items}): "
                "items.npy does not match the model's weights"
            )
        last = np.array([model.n_items - 1], dtype=np.int64)
        part = np.asarray(model.score_indices(np.array([model.n_users - 1], dtype=np.int64), last))
        if part.shape != (1, 1):
            raise ModelStateError(
                f"{where}: scoring one item gave shape {part.shape}, expected (1, 1)"
            )
    if np.isnan(full).any() or np.isnan(part).any():
        raise ModelStateError(f"{where}: the model scores NaN")


_LOADING: ContextVar[tuple[str, ...]] = ContextVar("fusionrec_loading_folders", default=())
_MAX_NESTING = 8


def member_folder(parent: str | Path, *parts: str) -> Path:
    """``parent/parts...`` for a nested model folder (an ensemble's member), confined to
    ``parent``: each part must be a plain name (no ``..``, no separators, not absolute) and no
    component may be a symbolic link, so a crafted config cannot load a model from elsewhere."""
    parent = Path(parent)
    path = parent
    for part in parts:
        if (
            not part
            or part in (".", "..")
            or "/" in part
            or "\\" in part
            or "\x00" in part
            or Path(part).is_absolute()
        ):
            raise ModelStateError(f"{parent}: member folder name {part[:80]!r} is not a plain name")
        path = path / part
        if path.is_symlink():
            raise ModelStateError(f"{path}: member folders may not be symbolic links")
    root = parent.resolve()
    if root not in path.resolve().parents:
        raise ModelStateError(f"{path}: member folder lies outside {parent}")
    return path


@contextmanager
def nested_load(folder: str | Path) -> Iterator[None]:
    """Mark ``folder`` as being loaded while its members load: a member that leads back to a
    folder already on the way (a cycle), or nesting deeper than 8, is refused."""
    key = str(Path(folder).resolve())
    chain = _LOADING.get()
    if key in chain:
        raise ModelStateError(f"{folder}: model folders refer to each other in a cycle")
    if len(chain) >= _MAX_NESTING:
        raise ModelStateError(f"{folder}: model folders nested deeper than {_MAX_NESTING}")
    token = _LOADING.set((*chain, key))
    try:
        yield
    finally:
        _LOADING.reset(token)
