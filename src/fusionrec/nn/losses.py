"""Ranking losses shared by the models (all return a mean over the batch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bpr_loss", "bce_loss", "l2_reg"]


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: mean of ``-log sigmoid(pos - neg)`` (neg broadcast over
    extra negative columns when ``neg`` has one more dimension than ``pos``)."""
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return -F.logsigmoid(pos.float() - neg.float()).mean()


def bce_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits: positives labelled 1, negatives 0, averaged over all."""
    pos, neg = pos.float().reshape(-1), neg.float().reshape(-1)
    logits = torch.cat([pos, neg])
    labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    return F.binary_cross_entropy_with_logits(logits, labels)


def l2_reg(*tensors: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``sum(||t||²) / 2 / batch_size`` — the per-batch embedding regulariser of BPR-style models."""
    return sum(t.float().pow(2).sum() for t in tensors) / 2.0 / max(batch_size, 1)
