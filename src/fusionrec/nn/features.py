"""Shared feature encoder: a Dataset's user or item feature tables as tensors and learned embeddings.

Two parts:

- :class:`FeatureTables` (numpy, no torch): turns one side's feature table into index/value
  arrays with one row per user/item index: categorical ``token`` columns become integer codes
  (0 = missing), multi-valued ``token_seq`` columns (genres, title words) a padded code matrix
  (0 = padding), ``float`` / ``float_seq`` columns standardised values (missing = 0 = the mean),
  and named dense matrices (``Dataset.item_embeddings``, or any extra per-row matrix such as
  language-model "label embeddings") NaN-free float32 matrices. The arrays round-trip through
  ``to_state`` / ``from_state`` (plain numeric arrays: safetensors-friendly, no pickle).
- :class:`FeatureEncoder` (``nn.Module``): one ``dim``-vector per field and row. Codes look up
  an embedding (missing -> zero vector), sequences are mean-pooled over their non-padding codes,
  numeric and dense inputs go through a bias-free linear projection (a scalar ``x`` becomes
  ``x * v``, the factorisation-machine convention). ``fields(rows)`` gives ``(B, F, dim)``
  (what FM/DeepFM need), ``forward(rows)`` the concatenation ``(B, F * dim)`` (what MLP towers need).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = ["FeatureTables", "FeatureEncoder", "mlp"]

_KINDS = ("tok", "seq", "num", "dense")


def _is_missing(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return False


def _as_list(v: object) -> list:
    """A token_seq / float_seq cell as a list (lists, arrays, or a whitespace-separated string)."""
    if _is_missing(v):
        return []
    if isinstance(v, str):
        return v.split()
    if isinstance(v, (list, tuple, np.ndarray)):
        return [x for x in v if not _is_missing(x)]
    return [v]


@dataclass
class FeatureTables:
    """Per-row feature arrays of one side (users or items), ready for :class:`FeatureEncoder`.

    Attributes:
        n_rows: number of users/items (row i = index i).
        tokens: name -> (n_rows,) int64 codes, 0 = missing.
        token_seqs: name -> (n_rows, L) int64 codes, 0 = padding.
        numeric: name -> (n_rows, k) float32 standardised values (k = 1 for a ``float`` column).
        dense: name -> (n_rows, d) float32 matrices (NaN rows replaced by zeros).
    """

    n_rows: int
    tokens: dict[str, np.ndarray] = field(default_factory=dict)
    token_seqs: dict[str, np.ndarray] = field(default_factory=dict)
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    dense: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_fields(self) -> int:
        """Number of fields (one embedding vector each)."""
        return len(self.tokens) + len(self.token_seqs) + len(self.numeric) + len(self.dense)

    @property
    def field_names(self) -> list[str]:
        """Field names in encoder order."""
        return [*self.tokens, *self.token_seqs, *self.numeric, *self.dense]

    def vocab_size(self, name: str) -> int:
        """Codes of a token/token_seq field run 0..vocab_size-1 (0 = missing/padding)."""
        a = self.tokens[name] if name in self.tokens else self.token_seqs[name]
        return int(a.max(initial=0)) + 1

    # ---------------------------------------------------------------- build
    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        side: Literal["user", "item"],
        columns: Sequence[str] | None = None,
        include_embeddings: bool | Sequence[str] = True,
        extra_dense: Mapping[str, np.ndarray] | None = None,
        max_seq_len: int = 32,
        min_count: int = 2,
    ) -> FeatureTables:
        """Encode ``dataset``'s ``side`` features.

        Args:
            columns: feature columns to use (default: all typed columns of that side).
            include_embeddings: item side only: use ``dataset.item_embeddings`` (True = all,
                or a list of names).
            extra_dense: more per-row matrices ``(n_rows, d)`` (e.g. LM label embeddings).
            max_seq_len: keep at most this many codes of a ``token_seq`` cell (first ones).
            min_count: token values seen fewer times than this are treated as missing (a value
                unique to one row only duplicates its id, and one that only cold rows carry
                would keep an untrained embedding).
        """
        if side not in ("user", "item"):
            raise ValueError(f"side must be 'user' or 'item', got {side!r}")
        n = dataset.n_users if side == "user" else dataset.n_items
        table = dataset.user_features if side == "user" else dataset.item_features
        types = dataset.user_feature_types if side == "user" else dataset.item_feature_types
        if columns is not None:
            unknown = [c for c in columns if c not in types]
            if unknown:
                raise ConfigError(
                    f"{side} feature columns {unknown} not in dataset {dataset.name!r} (has {sorted(types)})"
                )
        cols = list(types) if columns is None else list(columns)
        out = cls(n_rows=n)
        for c in cols:
            t = types[c]
            s = table[c] if table is not None else pd.Series([None] * n)
            if t == "token":
                out.tokens[c] = _encode_tokens(s, min_count)
            elif t == "token_seq":
                out.token_seqs[c] = _encode_token_seqs(s, max_seq_len, min_count)
            elif t == "float":
                out.numeric[c] = _standardise(
                    pd.to_numeric(s, errors="coerce").to_numpy(np.float64)[:, None]
                )
            else:  # float_seq
                out.numeric[c] = _standardise(_pad_floats(s))
        if side == "item" and include_embeddings:
            names = dataset.item_embeddings if include_embeddings is True else include_embeddings
            for name in names:
                if name not in dataset.item_embeddings:
                    raise ConfigError(f"item embedding {name!r} not in dataset {dataset.name!r}")
                out.dense[name] = _clean_dense(dataset.item_embeddings[name], name, n)
        for name, m in (extra_dense or {}).items():
            out.dense[name] = _clean_dense(m, name, n)
        return out

    # ----------------------------------------------------------- persistence
    def to_state(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays keyed ``{prefix}{kind}.{j}.{name}`` (field order kept in ``j``)."""
        state = {}
        for kind, group in zip(
            _KINDS, (self.tokens, self.token_seqs, self.numeric, self.dense), strict=True
        ):
            for j, (name, a) in enumerate(group.items()):
                state[f"{prefix}{kind}.{j:03d}.{name}"] = np.ascontiguousarray(a)
        state[f"{prefix}n_rows"] = np.array([self.n_rows], dtype=np.int64)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], prefix: str) -> FeatureTables:
        """Inverse of :meth:`to_state`."""
        key = f"{prefix}n_rows"
        if key not in state:
            raise ValueError(f"no feature tables with prefix {prefix!r} in the saved state")
        out = cls(n_rows=int(np.asarray(state[key])[0]))
        groups = dict(
            zip(_KINDS, (out.tokens, out.token_seqs, out.numeric, out.dense), strict=True)
        )
        for k in sorted(x for x in state if x.startswith(prefix) and x != key):
            kind, _, name = k[len(prefix) :].split(".", 2)
            groups[kind][name] = np.asarray(state[k])
        return out


def _frequent(values: pd.Series, min_count: int) -> set:
    counts = values.value_counts()
    return set(counts.index[counts >= min_count])


def _encode_tokens(s: pd.Series, min_count: int = 1) -> np.ndarray:
    vals = s.map(lambda v: None if _is_missing(v) else str(v))
    if min_count > 1:
        keep = _frequent(vals.dropna(), min_count)
        vals = vals.map(lambda v: v if v in keep else None)
    codes, _ = pd.factorize(vals, sort=True)  # missing -> -1
    return (codes + 1).astype(np.int64)


def _encode_token_seqs(s: pd.Series, max_len: int, min_count: int = 1) -> np.ndarray:
    lists = [[str(x) for x in _as_list(v)] for v in s]
    if min_count > 1:
        keep = _frequent(pd.Series([x for row in lists for x in row], dtype=object), min_count)
        lists = [[x for x in row if x in keep] for row in lists]
    lists = [row[:max_len] for row in lists]
    lens = np.array([len(x) for x in lists], dtype=np.int64)
    width = max(int(lens.max(initial=0)), 1)
    out = np.zeros((len(lists), width), dtype=np.int64)
    if lens.sum():
        flat = np.concatenate([np.asarray(x, dtype=object) for x in lists if x])
        codes, _ = pd.factorize(flat, sort=True)
        rows = np.repeat(np.arange(len(lists)), lens)
        pos = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
        out[rows, pos] = codes + 1
    return out


def _pad_floats(s: pd.Series) -> np.ndarray:
    lists = [[float(x) for x in _as_list(v)] for v in s]
    width = max((len(x) for x in lists), default=0) or 1
    out = np.full((len(lists), width), np.nan)
    for r, x in enumerate(lists):
        out[r, : len(x)] = x
    return out


def _standardise(x: np.ndarray) -> np.ndarray:
    """Per-column (x - mean) / std over non-missing values; missing -> 0."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)
        std = np.nanstd(np.where(np.isfinite(x), x, np.nan), axis=0)
    mean = np.nan_to_num(mean)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    z = (x - mean) / std
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def _clean_dense(m: np.ndarray, name: str, n: int) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    if m.ndim != 2 or m.shape[0] != n:
        raise ValueError(f"dense feature {name!r} has shape {m.shape}, expected ({n}, d)")
    return np.where(np.isfinite(m), m, 0.0).astype(np.float32)


class FeatureEncoder(nn.Module):
    """Learned field embeddings over :class:`FeatureTables` (tables held as non-saved buffers).

    ``fields(rows)`` -> ``(B, n_fields, dim)``; ``forward(rows)`` -> ``(B, n_fields * dim)``.
    A table with no fields gives ``(B, 0, dim)`` / ``(B, 0)``.
    """

    def __init__(self, tables: FeatureTables, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.n_fields = tables.n_fields
        self.names = tables.field_names
        self._tok, self._seq, self._num = [], [], []
        self.emb = nn.ModuleDict()
        self.proj = nn.ModuleDict()
        j = 0
        for name, a in tables.tokens.items():
            self.register_buffer(f"tok{j}", torch.as_tensor(a, dtype=torch.long), persistent=False)
            self.emb[f"f{j}"] = nn.Embedding(tables.vocab_size(name), dim)
            self._tok.append(j)
            j += 1
        for name, a in tables.token_seqs.items():
            self.register_buffer(f"seq{j}", torch.as_tensor(a, dtype=torch.long), persistent=False)
            self.emb[f"f{j}"] = nn.Embedding(tables.vocab_size(name), dim)
            self._seq.append(j)
            j += 1
        for a in (*tables.numeric.values(), *tables.dense.values()):
            self.register_buffer(
                f"num{j}", torch.as_tensor(a, dtype=torch.float32), persistent=False
            )
            self.proj[f"f{j}"] = nn.Linear(a.shape[1], dim, bias=False)
            self._num.append(j)
            j += 1

    def fields(self, rows: torch.Tensor) -> torch.Tensor:
        """Field vectors ``(len(rows), n_fields, dim)`` for row indices ``rows``."""
        out: list[torch.Tensor] = []
        for j in self._tok:
            code = getattr(self, f"tok{j}")[rows]
            out.append(self.emb[f"f{j}"](code) * (code > 0).unsqueeze(-1))
        for j in self._seq:
            code = getattr(self, f"seq{j}")[rows]
            mask = (code > 0).unsqueeze(-1).float()
            e = self.emb[f"f{j}"](code) * mask
            out.append(e.sum(1) / mask.sum(1).clamp_min(1.0))
        for j in self._num:
            out.append(self.proj[f"f{j}"](getattr(self, f"num{j}")[rows]))
        if not out:
            return torch.zeros(rows.shape[0], 0, self.dim, device=rows.device)
        return torch.stack(out, 1)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Concatenated field vectors ``(len(rows), n_fields * dim)``."""
        return self.fields(rows).flatten(1)


def mlp(sizes: Sequence[int], dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ...`` with ReLU (and dropout) between them."""
    layers: list[nn.Module] = []
    for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if j < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
