"""Training settings shared by every torch model (the model's config inherits them).

Only settings that decide the trained weights live here; how and where the run happens
(device, CPU threads, progress bar, run folder, resume, callbacks) is
``fusionrec.training.FitOptions``, never saved with the model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from fusionrec.config.base import ModelConfig

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
    fused_optimizer: bool = False
    """Use torch's fused (single-kernel) implementation of the optimiser: several times faster
    per step for models with many small steps; results agree with the default to float rounding."""
    num_negatives: int = Field(1, ge=1)
    """Negative items sampled per positive (pairwise/pointwise losses)."""
    early_stop_metric: str = "ndcg@10"
    """Validation metric watched for early stopping (full ranking), e.g. 'ndcg@10', 'recall@20'."""
    patience: int = Field(10, ge=0)
    """Evaluations without improvement before stopping (0 = never stop early)."""
    eval_every: int = Field(1, ge=1)
    """Evaluate on the validation set every N epochs."""
    amp: Literal["none", "bf16", "fp16"] = "none"
    """Mixed precision: autocast the loss to bfloat16 ('bf16', CPU or CUDA) or float16 ('fp16',
    with a gradient scaler); parameters and optimiser state stay float32."""
    grad_accum_steps: int = Field(1, ge=1)
    """Accumulate gradients over N batches per optimiser step (effective batch = N x batch_size).
    A trailing group of fewer batches at the end of an epoch still steps."""
    lr_schedule: Literal["constant", "cosine", "step", "linear_warmup_cosine"] = "constant"
    """Per-epoch learning-rate schedule (see ``fusionrec.training.lr_factor``)."""
    warmup_epochs: int = Field(0, ge=0)
    """Linear warm-up over the first N epochs (epoch e gets lr x e/N), before any schedule."""
    lr_step_size: int = Field(10, ge=1)
    """'step' schedule: multiply the lr by ``lr_gamma`` every N epochs."""
    lr_gamma: float = Field(0.5, gt=0, le=1)
    """'step' schedule: decay factor."""
    lr_min_ratio: float = Field(0.0, ge=0, le=1)
    """Cosine schedules: the final lr as a fraction of ``lr``."""
    clip_grad_norm: float | None = Field(None, gt=0)
    """Clip the global gradient L2 norm to this value before each step (None = no clipping)."""
    progressive_unfreeze: dict[int, tuple[str, ...]] = Field(default_factory=dict)
    """Progressive unfreezing: {epoch: [parameter-name prefixes]}; matching parameters are frozen
    before that epoch and train from it on (e.g. ``{3: ["bank.encoder"]}``; see
    ``fusionrec.training.unfreeze``). Empty = everything trains from epoch 1."""

    @field_validator("early_stop_metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        from fusionrec.evaluation.evaluator import parse_metric

        parse_metric(v)
        return v.lower()

    @model_validator(mode="after")
    def _warmup(self) -> TrainConfig:
        if self.lr_schedule == "linear_warmup_cosine" and self.warmup_epochs < 1:
            raise ValueError("lr_schedule 'linear_warmup_cosine' needs warmup_epochs >= 1")
        return self

    @field_validator("progressive_unfreeze")
    @classmethod
    def _unfreeze(cls, v: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
        for epoch, prefixes in v.items():
            if epoch < 1:
                raise ValueError(f"progressive_unfreeze epochs must be >= 1, got {epoch}")
            if not prefixes:
                raise ValueError(f"progressive_unfreeze epoch {epoch} names no parameters")
        return v
