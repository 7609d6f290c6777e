"""A plain multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """``sizes[0] -> sizes[1] -> ... -> sizes[-1]``: each layer dropout, linear, activation.

    Args:
        sizes: input width followed by each layer's output width.
        dropout: dropout probability applied before every linear layer.
        activation: 'relu', 'gelu', 'tanh' or 'none'.
        last_activation: apply the activation after the last layer too.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        dropout: float = 0.0,
        activation: str = "relu",
        last_activation: bool = True,
    ) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"MLP needs an input and at least one layer size, got {list(sizes)}")
        acts = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "none": nn.Identity}
        if activation not in acts:
            raise ValueError(f"unknown activation {activation!r}; known: {', '.join(acts)}")
        layers: list[nn.Module] = []
        for n, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.Linear(a, b))
            if last_activation or n < len(sizes) - 2:
                layers.append(acts[activation]())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
