"""Training settings shared by every torch model (the model's config inherits them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from fusionrec.models.base import ModelConfig

__all__ = ["TrainConfig"]


class TrainConfig(ModelConfig):
    """Settings of the shared Trainer."""

    epochs: int = Field(100, ge=1)
    """Maximum number of passes over the training data."""
    batch_size: int = Field(2048, ge=1)
    """Training examples per optimisation step."""
    lr: float = Field(1e-3, gt=0)
    """Learning rate."""
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    """Optimiser."""
    weight_decay: float = Field(0.0, ge=0)
    """Decoupled (adamw) or L2 (adam, sgd) weight decay."""
    num_negatives: int = Field(1, ge=1)
    """Negative items sampled per positive (pairwise/pointwise losses)."""
    early_stop_metric: str = "ndcg@10"
    """Validation metric watched for early stopping (full ranking), e.g. 'ndcg@10', 'recall@20'."""
    patience: int = Field(10, ge=0)
    """Evaluations without improvement before stopping (0 = never stop early)."""
    eval_every: int = Field(1, ge=1)
    """Evaluate on the validation set every N epochs."""
    device: str = "auto"
    """'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."""
    progress: bool = False
    """Show a per-epoch progress bar."""

    @field_validator("early_stop_metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        from fusionrec.evaluation.evaluator import parse_metric

        parse_metric(v)
        return v.lower()

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda") and not v.startswith("cuda:"):
            raise ValueError("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return v
