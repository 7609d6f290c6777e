"""A small causal (left-to-right) transformer encoder for sequential recommenders.

Pre-LayerNorm blocks over ``torch.nn.functional.scaled_dot_product_attention``. Written here
rather than taken from ``nn.TransformerEncoder`` because we need (a) a mask that hides padding
keys yet always lets a position see itself (so fully padded rows give no NaN), and (b) layer
norms whose gain is stored as an offset from 1, so the shared ``init_parameters`` (which zeroes
every 1-d parameter) leaves them at the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm", "CausalTransformer"]


class LayerNorm(nn.Module):
    """LayerNorm with gain ``1 + delta``: zero-initialised parameters mean the identity norm."""

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], 1.0 + self.delta, self.bias, self.eps)


class _Block(nn.Module):
    def __init__(
        self, dim: int, heads: int, inner: int, dropout: float, attn_dropout: float
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.ln1 = LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln2 = LayerNorm(dim)
        self.ff1 = nn.Linear(dim, inner)
        self.ff2 = nn.Linear(inner, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (
            self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        )
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.ln2(x))))))


class CausalTransformer(nn.Module):
    """Stack of causal self-attention blocks; ``forward(x, valid)`` with ``valid`` (B, L) bool."""

    def __init__(
        self, dim: int, layers: int, heads: int, inner: int, dropout: float, attn_dropout: float
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _Block(dim, heads, inner, dropout, attn_dropout) for _ in range(layers)
        )
        self.ln = LayerNorm(dim)

    @staticmethod
    def mask(valid: torch.Tensor) -> torch.Tensor:
        """(B, 1, L, L) bool: query i sees key j when j <= i and j is valid, and always itself."""
        n = valid.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=valid.device).tril()
        eye = torch.eye(n, dtype=torch.bool, device=valid.device)
        return ((causal & valid[:, None, :]) | eye)[:, None]

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        m = self.mask(valid)
        for blk in self.blocks:
            x = blk(x, m)
        return self.ln(x)
