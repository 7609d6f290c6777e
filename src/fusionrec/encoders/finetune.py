"""Item text vectors inside a model, optionally with the language model fine-tuned.

:class:`TextFeatureBank` holds one text embedding per item in a buffer (``memory``, taken from
the embedding cache). With ``finetune="frozen"`` that is all it is. With ``"top_n"`` (the top
N transformer layers unfrozen), ``"lora"`` (``peft`` LoRA adapters on the attention
projections) or ``"full"`` (every weight of the language model), it also holds the text encoder: while training, up to ``live_items`` distinct
items of each batch are re-embedded with gradients and written back to ``memory`` (the other
items use their last embedding, refreshed by ``refresh()``), so one step costs a bounded
number of encoder passes whatever the batch size.

The encoder is kept out of the module's registered children on purpose: the shared
initialisation (``init_parameters``) must not overwrite pretrained weights, and the saved model
must not copy the frozen base weights. Its trainable parameters reach the optimiser through
``param_groups(lr)`` (with their own learning rate) and the saved model through
``trainable_state()`` / ``load_trainable_state()``; the base weights are reloaded from the
named model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from fusionrec.encoders.text import TextEncoder, load_text_encoder
from fusionrec.errors import ConfigError

__all__ = ["TextFeatureBank", "apply_finetune", "transformer_layers", "FinetuneMode"]

FinetuneMode = Literal["frozen", "top_n", "lora", "full"]


def transformer_layers(backbone: nn.Module) -> tuple[str, nn.ModuleList]:
    """The (name, ModuleList) of transformer blocks: the longest ModuleList whose name ends
    in ``layer``/``layers``/``h``/``block``/``blocks`` (BERT, RoBERTa, GPT-2, T5, ...)."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, mod in backbone.named_modules():
        if isinstance(mod, nn.ModuleList) and name.rsplit(".", 1)[-1] in (
            "layer",
            "layers",
            "h",
            "block",
            "blocks",
        ):
            if best is None or len(mod) > len(best[1]):
                best = (name, mod)
    if best is None:
        raise ConfigError(
            f"cannot find the transformer layers of {type(backbone).__name__} for top_n fine-tuning"
        )
    return best


def apply_finetune(
    encoder: TextEncoder,
    mode: FinetuneMode,
    top_n: int = 1,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    lora_targets: Sequence[str] | None = None,
) -> list[str]:
    """Set which encoder weights train; returns the trainable parameter names.

    ``frozen``: none. ``top_n``: the top ``top_n`` transformer layers (everything else,
    embeddings included, stays frozen). ``lora``: wraps the transformer with ``peft`` LoRA
    adapters (rank ``lora_r``) on ``lora_targets`` (default: peft's choice for the architecture,
    the attention query/value projections for BERT-like models); only the adapters train.
    ``full``: every weight of the language model trains (embeddings included; the saved model
    then carries the whole encoder).
    """
    backbone = encoder.backbone()
    for p in encoder.module.parameters():
        p.requires_grad_(False)
    if mode == "frozen":
        return []
    if mode == "full":
        for p in encoder.module.parameters():
            p.requires_grad_(True)
    elif mode == "top_n":
        _, layers = transformer_layers(backbone)
        if not 1 <= top_n <= len(layers):
            raise ConfigError(f"encoder_top_n={top_n} but the encoder has {len(layers)} layers")
        for layer in layers[len(layers) - top_n :]:
            for p in layer.parameters():
                p.requires_grad_(True)
    elif mode == "lora":
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=list(lora_targets) if lora_targets else None,
        )
        try:
            encoder.set_backbone(get_peft_model(backbone, cfg))
        except ValueError as e:
            raise ConfigError(
                f"LoRA cannot wrap text model {encoder.name!r}: {e}; set lora_targets"
            ) from None
    else:
        raise ConfigError(f"unknown encoder_finetune {mode!r}; choose frozen, top_n, lora or full")
    return [n for n, p in encoder.module.named_parameters() if p.requires_grad]


class TextFeatureBank(nn.Module):
    """Per-item text vectors (buffer ``memory``), optionally backed by a trainable encoder.

    Args:
        memory: (n_items, dim) initial text embeddings.
        texts: the item texts (needed only when fine-tuning).
        encoder: a private (``fresh``) encoder already prepared by :func:`apply_finetune`, or None.
        live_items: most items re-embedded with gradients per training step.
        normalize: L2-normalise live embeddings (as the cached ones are).
    """

    def __init__(
        self,
        memory: np.ndarray | torch.Tensor,
        texts: Sequence[str] | None = None,
        encoder: TextEncoder | None = None,
        live_items: int = 64,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        mem = torch.tensor(np.array(memory, dtype=np.float32))
        self.register_buffer("memory", torch.nan_to_num(mem, nan=0.0))
        self.texts = list(texts) if texts is not None else None
        self._encoder = (
            [encoder] if encoder is not None else []
        )  # unregistered on purpose (see module doc)
        self.live_items = live_items
        self.normalize = normalize

    @property
    def encoder(self) -> TextEncoder | None:
        return self._encoder[0] if self._encoder else None

    @property
    def finetuning(self) -> bool:
        enc = self.encoder
        return enc is not None and any(p.requires_grad for p in enc.module.parameters())

    @property
    def dim(self) -> int:
        return int(self.memory.shape[1])

    def train(self, mode: bool = True) -> TextFeatureBank:
        super().train(mode)
        if self.encoder is not None:
            self.encoder.module.train(mode)
        return self

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Text vectors of ``items`` (any shape of item indices) -> (*items.shape, dim)."""
        if not (self.training and self.finetuning):
            return self.memory[items]
        if self.texts is None or len(self.texts) != self.memory.shape[0]:
            raise ValueError(
                "fine-tuning the text encoder needs one text per item (a loaded model cannot be trained further)"
            )
        flat = items.reshape(-1)
        uniq = torch.unique(flat)
        if len(uniq) > self.live_items:
            uniq = uniq[torch.randperm(len(uniq), device=uniq.device)[: self.live_items]]
        live = self.encoder.embed([self.texts[i] for i in uniq.tolist()], normalize=self.normalize)
        live = live.to(self.memory.dtype)
        with torch.no_grad():
            self.memory[uniq] = live.detach()
        out = self.memory[flat].clone()
        slot = torch.full((self.memory.shape[0],), -1, dtype=torch.long, device=flat.device)
        slot[uniq] = torch.arange(len(uniq), device=flat.device)
        pos = slot[flat]
        sel = pos >= 0
        out = out.index_put((torch.nonzero(sel).squeeze(1),), live[pos[sel]])
        return out.reshape(*items.shape, -1)

    @torch.no_grad()
    def refresh(self, batch_size: int = 64) -> None:
        """Re-embed every item with the current encoder (no-op when not fine-tuning)."""
        if self.finetuning:
            vecs = self.encoder.encode(self.texts, batch_size=batch_size, normalize=self.normalize)
            self.memory.copy_(torch.from_numpy(vecs).to(self.memory.device))

    def param_groups(self, lr: float) -> list[dict]:
        """The encoder's trainable parameters as one optimiser group at ``lr`` (or none)."""
        enc = self.encoder
        if enc is None:
            return []
        params = [p for p in enc.module.parameters() if p.requires_grad]
        return [{"params": params, "lr": lr}] if params else []

    def trainable_state(self) -> dict[str, np.ndarray]:
        enc = self.encoder
        if enc is None:
            return {}
        return {
            n: p.detach().float().cpu().numpy()
            for n, p in enc.module.named_parameters()
            if p.requires_grad
        }

    def load_trainable_state(self, state: dict[str, np.ndarray]) -> None:
        enc = self.encoder
        if not state:
            return
        if enc is None:
            raise ValueError("saved fine-tuned encoder weights but the model has no encoder")
        named = dict(enc.module.named_parameters())
        missing = sorted(set(state) - set(named))
        if missing:
            raise ValueError(
                f"saved encoder weights do not match the encoder: unknown {missing[:3]}"
            )
        with torch.no_grad():
            for n, v in state.items():
                named[n].copy_(torch.from_numpy(np.asarray(v)))


def build_text_bank(
    memory: np.ndarray,
    texts: Sequence[str] | None,
    model_name: str,
    mode: FinetuneMode,
    device: str,
    top_n: int = 1,
    lora_r: int = 8,
    lora_alpha: int = 16,
    live_items: int = 64,
) -> TextFeatureBank:
    """A bank for ``memory``; loads a private encoder when ``mode`` is not frozen."""
    encoder = None
    if mode != "frozen":
        encoder = load_text_encoder(model_name, device=device, fresh=True)
        apply_finetune(encoder, mode, top_n=top_n, lora_r=lora_r, lora_alpha=lora_alpha)
    return TextFeatureBank(memory, texts, encoder, live_items=live_items)
