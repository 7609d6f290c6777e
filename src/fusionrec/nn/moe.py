"""Mixture-of-experts adapter (UniSRec's whitening adapter) shared by the text models."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MoEAdapter"]


class MoEAdapter(nn.Module):
    """Mixture-of-experts whitening adapter (UniSRec): sum_k g_k(x) · (x - b_k) W_k."""

    def __init__(self, in_dim: int, out_dim: int, n_experts: int, dropout: float) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_experts, in_dim))
        self.weight = nn.Parameter(torch.empty(n_experts, in_dim, out_dim))
        nn.init.xavier_normal_(self.weight)
        self.gate = nn.Linear(in_dim, n_experts)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x)
        g = torch.softmax(self.gate(x), dim=-1)  # (..., K)
        experts = torch.einsum("...kd,kdo->...ko", x.unsqueeze(-2) - self.bias, self.weight)
        return (g.unsqueeze(-1) * experts).sum(-2)
