"""``text_seq``: a UniSRec-style sequential recommender whose items are their text.

Each item is its pretrained text embedding passed through a learned mixture-of-experts
whitening adapter (expert k: ``(x - b_k) W_k``, softly gated by x); there is no item-ID table
(unless ``use_id``), so any item with text, including items never seen in training, has a
vector. A small causal transformer (``fusionrec.nn.transformer``, shared with SASRec)
reads the user's history of adapted item vectors; the next item is predicted with a softmax
over all items' adapted vectors (cross-entropy on every position). A user's score is the last
hidden state dotted with every item vector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities
from fusionrec.models.registry import register
from fusionrec.models.text.toolkit import LMTextConfig, TextModelMixin
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.nn.moe import MoEAdapter
from fusionrec.nn.transformer import CausalTransformer, LayerNorm

__all__ = ["TextSeq", "TextSeqConfig", "MoEAdapter"]


class TextSeqConfig(LMTextConfig):
    """Settings of text_seq."""

    _aliases: ClassVar[dict[str, str]] = {"hidden_dim": "embedding_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    embedding_dim: int = Field(64, ge=8)
    """Width of the adapted item vectors and the transformer (was ``hidden_dim``)."""
    n_layers: int = Field(2, ge=1)
    """Transformer blocks."""
    n_heads: int = Field(2, ge=1)
    """Attention heads (must divide embedding_dim)."""
    max_len: int = Field(50, ge=2)
    """Longest history read (most recent items)."""
    dropout: float = Field(0.2, ge=0, lt=1)
    """Dropout in the transformer and on adapter inputs."""
    n_experts: int = Field(8, ge=1)
    """Experts in the mixture-of-experts whitening adapter."""
    temperature: float = Field(1.0, gt=0)
    """Softmax temperature of the next-item logits."""
    use_id: bool = False
    """Add a learned item-ID embedding to warm items (transductive); False = text only (inductive)."""
    batch_size: int = Field(128, ge=1)
    """Training sequences per optimisation step."""
    epochs: int = Field(50, ge=1)
    """Maximum number of passes over the training data."""
    history_includes_valid: bool = True
    """After fit, score users from train+valid histories (the valid items precede test in time)."""


class _TextSeqModule(nn.Module):
    def __init__(self, n_items: int, c: TextSeqConfig, bank: nn.Module, warm: torch.Tensor) -> None:
        super().__init__()
        if c.embedding_dim % c.n_heads:
            raise ValueError(f"embedding_dim={c.embedding_dim} is not divisible by n_heads={c.n_heads}")
        h = c.embedding_dim
        self.c = c
        self.bank = bank
        self.adapter = MoEAdapter(bank.dim, h, c.n_experts, c.dropout)
        self.item_id = nn.Embedding(n_items, h) if c.use_id else None
        self.pos = nn.Embedding(c.max_len, h)
        self.norm = LayerNorm(h)
        self.drop = nn.Dropout(c.dropout)
        self.transformer = CausalTransformer(h, c.n_layers, c.n_heads, 2 * h, c.dropout, c.dropout)
        self.register_buffer("warm", warm)

    def item_table(self, live: torch.Tensor | None = None) -> torch.Tensor:
        """Adapted vectors of all items; with fine-tuning, ``live`` items are re-embedded."""
        text = self.bank.memory
        if live is not None and self.training and self.bank.finetuning:
            uniq = torch.unique(live)
            text = text.index_put((uniq,), self.bank(uniq))
        v = self.adapter(text)
        if self.item_id is not None:
            v = v + self.item_id.weight * self.warm[:, None].to(v.dtype)
        return v

    def encode(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, h) of left-padded sequences (pad = -1)."""
        valid = seq >= 0
        x = table[seq.clamp_min(0)] * valid.unsqueeze(-1).to(table.dtype)
        L = seq.shape[1]
        x = self.drop(self.norm(x + self.pos.weight[self.c.max_len - L :]))
        return self.transformer(x, valid)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seq, tgt = batch["seq"], batch["target"]
        table = self.item_table(live=tgt[tgt >= 0])
        hid = self.encode(seq, table)
        keep = tgt >= 0
        logits = hid[keep] @ table.T / self.c.temperature
        return torch.nn.functional.cross_entropy(logits, tgt[keep])

    def param_groups(self, lr: float) -> list[dict]:
        return [
            {"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}
        ] + self.bank.param_groups(self.c.encoder_lr)


@register("text_seq")
class TextSeq(TextModelMixin, TorchRecommender):
    """UniSRec-style sequential recommender over adapted text embeddings (transfers to new items)."""

    Config = TextSeqConfig
    capabilities = Capabilities(
        needs_text=True, cold_start_items=True, cold_start_users=True, sequential=True
    )

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        self.warm_ = dataset.item_popularity() > 0
        self._set_histories(dataset.sequences())
        self._prepare_text(dataset)

    def _set_histories(self, seqs: Sequence[np.ndarray]) -> None:
        self.seq_offsets_ = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(
            np.int64
        )
        self.seq_items_ = (
            np.concatenate(seqs).astype(np.int64) if len(seqs) else np.zeros(0, np.int64)
        )

    def build_module(self) -> nn.Module:
        warm = torch.as_tensor(np.asarray(self.warm_, dtype=bool))
        return _TextSeqModule(self.n_items, self.config, self._text_bank(), warm)

    def _windows(self) -> tuple[np.ndarray, np.ndarray]:
        """Training windows: each history cut from its end into (input, target) pairs of max_len."""
        L = self.config.max_len
        ins, outs = [], []
        for u in range(len(self.seq_offsets_) - 1):
            s = self.seq_items_[self.seq_offsets_[u] : self.seq_offsets_[u + 1]]
            end = len(s)
            while end >= 2:
                start = max(0, end - L - 1)
                w = s[start:end]
                x, y = np.full(L, -1, np.int64), np.full(L, -1, np.int64)
                x[L - len(w) + 1 :] = w[:-1]
                y[L - len(w) + 1 :] = w[1:]
                ins.append(x)
                outs.append(y)
                end = start + 1 if start > 0 else 0
        if not ins:
            return np.zeros((0, L), np.int64), np.zeros((0, L), np.int64)
        return np.stack(ins), np.stack(outs)

    def _init_std(self) -> float:
        return 0.02

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]:
        self._start_epoch_text()
        if getattr(self, "_win", None) is None:
            self._win = self._windows()
        x, y = self._win
        order = rng.permutation(len(x))
        bs = self.config.batch_size
        for s in range(0, len(order), bs):
            sel = order[s : s + bs]
            yield {
                "seq": torch.as_tensor(x[sel], device=self.device_),
                "target": torch.as_tensor(y[sel], device=self.device_),
            }

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        self._win = None
        try:
            super()._fit(dataset, valid, seed)
            if self.config.history_includes_valid and valid is not None and valid.n_interactions:
                self._set_histories(_merged_sequences([dataset, valid], self.n_users))
        finally:
            self._win = None

    def _history_tensor(self, histories: Sequence[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        L = self.config.max_len
        x = np.full((len(histories), L), -1, np.int64)
        empty = np.zeros(len(histories), bool)
        for r, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64)[-L:]
            if len(h):
                x[r, L - len(h) :] = h
            else:
                empty[r] = True
        return torch.as_tensor(x, device=self.device_), empty

    def _score_seqs(
        self, histories: Sequence[np.ndarray], items: torch.Tensor | None
    ) -> torch.Tensor:
        m = self.module_
        table = m.item_table()
        x, empty = self._history_tensor(histories)
        out = (
            m.encode(x, table)[:, -1]
            @ (table if items is None else table[items]).T
            / self.config.temperature
        )
        if empty.any():  # no history: popularity
            pop = torch.as_tensor(np.log1p(self.item_pop_), device=out.device)
            out[torch.as_tensor(empty, device=out.device)] = pop if items is None else pop[items]
        return out

    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        off = self.seq_offsets_
        hist = [self.seq_items_[off[u] : off[u + 1]] for u in users.cpu().numpy()]
        return self._score_seqs(hist, items)

    @torch.no_grad()
    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores for ad-hoc users given their item-index histories (oldest first)."""
        self._require_fitted()
        self.module_.eval()
        return self._score_seqs(histories, None).float().cpu().numpy()

    def item_vectors(self) -> np.ndarray:
        with torch.no_grad():
            return self.module_.eval().item_table().cpu().numpy()

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {
            "warm": np.asarray(self.warm_, dtype=np.int8),
            "seq_offsets": self.seq_offsets_,
            "seq_items": self.seq_items_,
            **self._text_extra_state(),
        }

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.warm_ = state["warm"].astype(bool)
        self.seq_offsets_ = state["seq_offsets"].astype(np.int64)
        self.seq_items_ = state["seq_items"].astype(np.int64)
        self._text_load_extra_state(state)

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        self._text_after_load()


def _merged_sequences(parts: Sequence[Dataset], n_users: int) -> list[np.ndarray]:
    """Per-user time-ordered item sequences over several datasets sharing id maps."""
    users = np.concatenate([d.user_idx for d in parts])
    items = np.concatenate([d.item_idx for d in parts])
    ts = np.concatenate(
        [d.timestamp if d.timestamp is not None else np.zeros(d.n_interactions) for d in parts]
    )
    order = np.lexsort((np.arange(len(users)), ts, users))
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    items = items[order]
    return [items[bounds[u] : bounds[u + 1]] for u in range(n_users)]
