"""Fusing an ID embedding with any number of named modality embeddings (text, image, KG, ...).

``ModalityFusion(kind, id_dim, modality_dims, out_dim)`` maps, for a batch of B items,

- ``ids``: (B, id_dim) ID embeddings, or None when the model has no ID part,
- ``modalities``: {name: (B, d_name)} for the names given in ``modality_dims``,
- ``masks``: optional {name: (B,) bool} (True = present) for the modalities and for the ID part
  under the key ``"id"`` (e.g. False for items with no training interactions),

to (B, out_dim). A missing row never contributes: its input is zeroed (NaN rows of an item
embedding matrix are treated as missing when no mask is given) and it is left out of every
gate/attention softmax. A row with nothing present comes out as zeros.

Kinds:

- ``"add"``: sum of the present parts, each linearly projected to ``out_dim`` (the ID part
  without projection when ``id_dim == out_dim``).
- ``"concat"``: concatenation of the (masked) raw parts, then a linear projection.
- ``"gate"``: per-dimension softmax gates over the present parts computed from all of them, so
  a warm item can lean on its ID and a cold one (ID masked) is its modality alone. The gates
  (B, n_parts, out_dim), each in [0, 1] and summing to 1 over present parts, are kept in
  ``last_weights``.
- ``"attention"``: the projected parts are tokens; a learned query attends over the present
  ones (scaled dot product); the weights (B, n_parts) are kept in ``last_weights``.

Part order (for ``last_weights``) is ``parts``: ``["id", *modality_dims]`` (without "id" when
``id_dim`` is 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

__all__ = ["ModalityFusion", "FusionKind", "FUSION_KINDS"]

FusionKind = Literal["add", "concat", "gate", "attention"]
FUSION_KINDS: tuple[str, ...] = ("add", "concat", "gate", "attention")


class ModalityFusion(nn.Module):
    """Fuse an ID embedding with named modality embeddings (see module doc).

    Args:
        kind: "add", "concat", "gate" or "attention".
        id_dim: width of the ID embedding (0 = no ID part).
        modality_dims: {modality name: input width}; at least one part overall.
        out_dim: width of the fused vector.
        dropout: dropout on each projected part while training.
    """

    def __init__(
        self,
        kind: FusionKind,
        id_dim: int,
        modality_dims: Mapping[str, int],
        out_dim: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in FUSION_KINDS:
            raise ValueError(
                f"unknown fusion kind {kind!r}; choose one of {', '.join(FUSION_KINDS)}"
            )
        if id_dim < 0 or out_dim < 1 or any(d < 1 for d in modality_dims.values()):
            raise ValueError("fusion widths must be positive (id_dim may be 0)")
        if "id" in modality_dims:
            raise ValueError("'id' is reserved for the ID part; rename the modality")
        self.kind = kind
        self.id_dim = id_dim
        self.modality_dims = dict(modality_dims)
        self.out_dim = out_dim
        self.parts: list[str] = (["id"] if id_dim else []) + list(self.modality_dims)
        if not self.parts:
            raise ValueError("ModalityFusion needs an ID part or at least one modality")
        dims = {"id": id_dim, **self.modality_dims}
        self.drop = nn.Dropout(dropout)
        if kind == "concat":
            self.proj = nn.Linear(sum(dims[p] for p in self.parts), out_dim)
        else:
            self.projs = nn.ModuleDict(
                {
                    p: (
                        nn.Identity()
                        if p == "id" and id_dim == out_dim
                        else nn.Linear(dims[p], out_dim)
                    )
                    for p in self.parts
                }
            )
        if kind == "gate":
            self.gate = nn.Linear(len(self.parts) * out_dim, len(self.parts) * out_dim)
        elif kind == "attention":
            self.key = nn.Linear(out_dim, out_dim)
            self.query = nn.Parameter(torch.zeros(out_dim))
        self.last_weights: torch.Tensor | None = None

    def forward(
        self,
        ids: torch.Tensor | None,
        modalities: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        inputs, present = self._inputs(ids, modalities, masks or {})
        b = present.shape[0]
        if self.kind == "concat":
            fused = self.proj(torch.cat([self.drop(x) for x in inputs], dim=-1))
            # a row with nothing present has no information: zeros, not the bias
            return fused * present.any(1, keepdim=True).to(fused.dtype)
        h = torch.stack(
            [
                self.drop(self.projs[p](x)) * present[:, j, None].to(x.dtype)
                for j, (p, x) in enumerate(zip(self.parts, inputs, strict=True))
            ],
            dim=1,
        )  # (B, P, out)
        if self.kind == "add":
            return h.sum(1)
        if self.kind == "gate":
            logits = self.gate(h.reshape(b, -1)).reshape(b, len(self.parts), self.out_dim)
            w = _masked_softmax(logits, present[:, :, None].expand_as(logits), dim=1)
        else:  # attention
            scores = (self.key(h) @ self.query) / math.sqrt(self.out_dim)  # (B, P)
            w = _masked_softmax(scores, present, dim=1)
            self.last_weights = w.detach()
            return (w[:, :, None] * h).sum(1)
        self.last_weights = w.detach()
        return (w * h).sum(1)

    def _inputs(
        self,
        ids: torch.Tensor | None,
        modalities: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor],
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        unknown = set(modalities) - set(self.modality_dims)
        if unknown:
            raise ValueError(
                f"unexpected modalities {sorted(unknown)}; this fusion has {self.parts}"
            )
        xs, pres = [], []
        for p in self.parts:
            x = ids if p == "id" else modalities.get(p)
            if x is None:
                raise ValueError(f"fusion input {p!r} is missing")
            want = self.id_dim if p == "id" else self.modality_dims[p]
            if x.dim() != 2 or x.shape[1] != want:
                raise ValueError(
                    f"fusion input {p!r} has shape {tuple(x.shape)}, expected (B, {want})"
                )
            nan = torch.isnan(x).any(1)
            m = masks.get(p)
            m = ~nan if m is None else (m.to(torch.bool) & ~nan)
            xs.append(torch.where(m[:, None], x, torch.zeros((), dtype=x.dtype, device=x.device)))
            pres.append(m)
        b = {x.shape[0] for x in xs}
        if len(b) != 1:
            raise ValueError(f"fusion inputs have different batch sizes {sorted(b)}")
        return xs, torch.stack(pres, dim=1)


def _masked_softmax(logits: torch.Tensor, keep: torch.Tensor, dim: int) -> torch.Tensor:
    logits = logits.masked_fill(~keep, float("-inf"))
    # rows with nothing kept: all -inf -> softmax NaN; give them zero weights instead
    any_kept = keep.any(dim, keepdim=True)
    w = torch.softmax(torch.where(any_kept, logits, torch.zeros_like(logits)), dim=dim)
    return w * keep.to(w.dtype)
