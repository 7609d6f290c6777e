"""Self-supervised pretraining of a sequence model, then fine-tuning by warm start.

Stage 1 fits the model with ``objective="contrastive"`` (CL4SRec's InfoNCE between two
augmented views of each training window, no next-item loss, no validation) and saves it;
stage 2 fits the same model with the next-item objective from those weights
(``fit(..., init_from=folder)``). Any registered model whose config has an ``objective``
field (``gru4rec``, ``caser``) can be pretrained this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.registry import get_model
from fusionrec.models.torch_base import TorchRecommender

__all__ = ["DEFAULT_VIEWS", "pretrain_then_finetune"]

#: CL4SRec's augmentations (crop / mask / reorder), one drawn per view.
DEFAULT_VIEWS: tuple[dict[str, Any], ...] = (
    {"kind": "crop", "rate": 0.6},
    {"kind": "mask", "rate": 0.3},
    {"kind": "reorder", "rate": 0.3},
)


def pretrain_then_finetune(
    name: str,
    train: Dataset,
    valid: Dataset | None,
    folder: str | Path,
    *,
    params: dict[str, Any] | None = None,
    pretrain: dict[str, Any] | None = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> tuple[TorchRecommender, TorchRecommender]:
    """(fine-tuned model, pretrained model). ``params`` are the model's settings for both
    stages; ``pretrain`` overrides them for stage 1 (e.g. ``epochs``, ``augment``; default
    augmentations :data:`DEFAULT_VIEWS`). The pretrained model is saved to ``folder``."""
    cls = get_model(name)
    if "objective" not in cls.Config.model_fields:
        raise ConfigError(f"model {name!r} has no self-supervised pretraining objective")
    params = dict(params or {})
    for k in ("objective", "augment"):
        if k in params:
            raise ConfigError(f"give {k!r} in 'pretrain', not in the shared 'params'")
    stage1 = {"augment": list(DEFAULT_VIEWS), **params, **(pretrain or {}), "objective": "contrastive"}
    pre = cls(**stage1).fit(train, None, seed=seed, **fit_kwargs)
    pre.save(folder)
    fine = cls(**params).fit(train, valid, seed=seed, init_from=folder, **fit_kwargs)
    return fine, pre
