"""``lm_lightgcn``: LightGCN with the items' pretrained text embeddings in two places.

- **Text edges** (``text_edges`` = k > 0): each item is linked to its k textually nearest items
  (cosine of centred text embeddings, symmetrised), with weight ``text_edge_weight`` relative to
  an interaction edge, in the graph that LightGCN propagates over:
  A = [[0, R], [Rᵀ, β·S_text]], normalised D^-1/2 A D^-1/2. Items that read alike exchange
  embeddings even when few users saw both, and an item without interactions is reached
  through its text neighbours.
- **Layer-0 fusion** (``fusion`` != "none"): the items' layer-0 vectors are
  ModalityFusion(ID embedding, centred text embedding) (add / concat / gate / attention).

Propagation, layer-mean readout and the BPR loss are LightGCN's (``fusionrec.models.lightgcn``).
Cold items (no training interactions) have their ID part masked (it never learned anything);
an item with no edges at all reads out its layer-0 vector undivided by the number of layers, on
the scale of the other items. Training negatives are drawn among warm items only (a cold item
as a negative would teach the text path that its text is bad), and warm items hide their ID
part with probability ``id_dropout``.

Measured on ml-100k (split seed 2020, fit seed 0, NDCG@10; a fit's own randomness moves these
by about ±0.005, e.g. fit seed 2020: LightGCN 0.3109, "add" 0.3070). RS 8:1:1: LightGCN
0.3170; "add" fusion 0.3135; "add" + 30 text edges (β=4) 0.3148; ID layer 0 + 30 text edges
0.3163 (0.3223 with plain LightGCN's negative draws). Cold-item: "add" 0.0596, "add" +
id_dropout 0.3 0.0748, "gate" + id_dropout 0.3 0.0811; with text edges cold items fall to ~0
(they are reached only through neighbours, scaled down). Hence the defaults: "add" fusion, no
text edges. None of these beats LightGCN on the warm protocol beyond that noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import NegativeSampler
from fusionrec.models.base import Capabilities
from fusionrec.models.lightgcn import LightGCN, LightGCNConfig, LightGCNModule
from fusionrec.models.lm_ease import text_features
from fusionrec.models.lm_fused import LMTextConfig, TextModelMixin, text_stats
from fusionrec.models.registry import register
from fusionrec.nn.fusion import ModalityFusion
from fusionrec.nn.graph import normalized_adjacency, to_torch_sparse
from fusionrec.training.batching import cached_sampler, pair_batches

__all__ = [
    "LMLightGCN",
    "LMLightGCNConfig",
    "text_augmented_adjacency",
    "text_neighbours",
    "warm_negatives",
]


class LMLightGCNConfig(LightGCNConfig, LMTextConfig):
    """LightGCN's settings plus the text encoder's and the fusion's."""

    fusion: Literal["none", "add", "concat", "gate", "attention"] = "add"
    """How an item's ID embedding and text embedding are fused at layer 0 ("none": ID only;
    text then enters through ``text_edges``)."""
    text_edges: int = Field(0, ge=0)
    """Item-item edges from each item to its k textually nearest items (0 = none)."""
    text_edge_weight: float = Field(4.0, gt=0)
    """Weight of a text edge relative to an interaction edge (weight 1)."""
    text_center: bool = True
    """Subtract the catalogue's mean text embedding before fusing."""
    id_dropout: float = Field(0.0, ge=0, lt=1)
    """Probability of hiding a warm item's ID part at a training step (text must carry it alone)."""


class LMLightGCNModule(LightGCNModule):
    """LightGCN module whose item rows of layer 0 are fused with text."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: torch.Tensor,
        c: LMLightGCNConfig,
        bank: nn.Module,
        warm: torch.Tensor,
        stats: tuple[torch.Tensor, torch.Tensor] | None,
        isolated: torch.Tensor,
    ) -> None:
        super().__init__(n_users, n_items, adj, c)
        d = c.embedding_size
        self.id_dropout = c.id_dropout
        self.bank = bank
        self.encoder_lr = c.encoder_lr
        self.fusion = (
            None if c.fusion == "none" else ModalityFusion(c.fusion, d, {"text": bank.dim}, d)
        )
        self.register_buffer("warm", warm)
        mean, has = stats if stats is not None else (torch.zeros(bank.dim), torch.ones_like(warm))
        self.register_buffer("text_mean", mean.float())
        self.register_buffer("has_text", has.bool())
        # isolated nodes read out layer 0 alone: undo the 1/(L+1) of the layer mean
        scale = torch.ones(n_users + n_items)
        scale[isolated] = float(c.n_layers + 1)
        self.register_buffer("readout_scale", scale)

    def item_layer0(self) -> torch.Tensor:
        ids = self.embedding.weight[self.n_users :]
        items = torch.arange(self.n_items, device=ids.device)
        id_mask = self.warm
        if self.training and self.id_dropout > 0:
            id_mask = id_mask & (torch.rand(id_mask.shape, device=ids.device) >= self.id_dropout)
        if self.fusion is None:
            return ids * id_mask[:, None].to(ids.dtype)
        text = self.bank(items) - self.text_mean
        return self.fusion(ids, {"text": text}, {"id": id_mask, "text": self.has_text})

    def layer0(self) -> torch.Tensor:
        return torch.cat([self.embedding.weight[: self.n_users], self.item_layer0()])

    def propagated(self) -> torch.Tensor:
        return super().propagated() * self.readout_scale[:, None]

    def param_groups(self, lr: float) -> list[dict]:
        groups = [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]
        return groups + self.bank.param_groups(self.encoder_lr)


def text_neighbours(text: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """(n_items, k) indices of each item's k textually nearest other items (cosine of centred,
    normalised embeddings; -1 where an item has no text or fewer than k others have text)."""
    f, has = text_features(text)
    n = f.shape[0]
    out = np.full((n, k), -1, np.int64)
    k_eff = min(k, int(has.sum()) - 1)
    if k_eff < 1:
        return out
    for s in range(0, n, block):
        sim = f[s : s + block] @ f.T
        sim[:, ~has] = -np.inf
        sim[np.arange(sim.shape[0]), np.arange(s, s + sim.shape[0])] = -np.inf
        top = np.argpartition(-sim, k_eff - 1, axis=1)[:, :k_eff]
        out[s : s + block, :k_eff] = top
    out[~has] = -1
    return out


def text_augmented_adjacency(
    interactions: sp.spmatrix, neighbours: np.ndarray, weight: float
) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of ``A = [[0, R], [Rᵀ, weight·S]]`` (users first, then items), R the
    binary interactions and S the symmetrised 0/1 item-item text-neighbour matrix."""
    r = sp.csr_matrix(interactions, dtype=np.float32, copy=True)
    r.data[:] = 1.0
    n_u, n_i = r.shape
    rows = np.repeat(np.arange(n_i), neighbours.shape[1])
    cols = neighbours.ravel()
    keep = cols >= 0
    s = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])), shape=(n_i, n_i)
    )
    s = s.maximum(s.T) * np.float32(weight)
    a = sp.bmat([[sp.csr_matrix((n_u, n_u)), r], [r.T, s]], format="csr", dtype=np.float32)
    deg = np.asarray(a.sum(1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags(inv.astype(np.float32))
    out = (d @ a @ d).tocsr().astype(np.float32)
    out.sort_indices()
    return out


def warm_negatives(
    batches: Iterable[dict[str, torch.Tensor]],
    warm_items: np.ndarray,
    sampler: NegativeSampler,
    rng: np.random.Generator,
) -> Iterator[dict[str, torch.Tensor]]:
    """Replace every negative that is not a warm item by a random warm non-positive item."""
    is_warm = np.zeros(sampler.n_items, bool)
    is_warm[warm_items] = True
    for b in batches:
        neg = b["neg"].cpu().numpy().copy()
        users = np.broadcast_to(b["users"].cpu().numpy()[:, None], neg.shape).copy()
        bad = ~is_warm[neg]
        for _ in range(20):
            if not bad.any():
                break
            neg[bad] = warm_items[rng.integers(0, len(warm_items), size=int(bad.sum()))]
            bad[bad] = sampler.is_positive(users[bad], neg[bad])
        b["neg"] = torch.as_tensor(neg, device=b["neg"].device)
        yield b


@register("lm_lightgcn")
class LMLightGCN(TextModelMixin, LightGCN):
    """LightGCN with ID + pretrained-text fusion at layer 0 (add/concat/gate/attention); cold items."""

    Config = LMLightGCNConfig
    capabilities = Capabilities(needs_text=True, cold_start_items=True, gpu=True)
    config: LMLightGCNConfig

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        self.warm_ = dataset.item_popularity() > 0
        self._prepare_text(dataset)
        k = self.config.text_edges
        self.text_nbrs_ = (
            text_neighbours(self.text_init_, k) if k else np.zeros((self.n_items, 0), np.int64)
        )
        self._adj = None  # built from seen_ + text_nbrs_ in build_module (also after load)

    def _adjacency(self) -> sp.csr_matrix:
        if self.text_nbrs_.shape[1] == 0:
            return normalized_adjacency(sp.csr_matrix(self.seen_))
        return text_augmented_adjacency(self.seen_, self.text_nbrs_, self.config.text_edge_weight)

    def build_module(self) -> nn.Module:
        adj = self._adjacency()
        isolated = torch.as_tensor(np.diff(adj.indptr) == 0)
        warm = torch.as_tensor(np.asarray(self.warm_, dtype=bool))
        stats = text_stats(getattr(self, "text_init_", None), self.config.text_center)
        return LMLightGCNModule(
            self.n_users,
            self.n_items,
            to_torch_sparse(adj),
            self.config,
            self._text_bank(),
            warm,
            stats,
            isolated,
        )

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterable[dict[str, Any]]:
        m = self.module_
        if m.bank.finetuning and getattr(self, "_epochs_seen", 0) > 0:
            m.bank.refresh(self.config.encode_batch_size)
        self._epochs_seen = getattr(self, "_epochs_seen", 0) + 1
        sampler = cached_sampler(self, dataset)
        out = pair_batches(
            dataset, rng, self.config.batch_size, self.config.num_negatives, self.device_, sampler
        )
        if self.warm_.all():
            return out
        return warm_negatives(out, np.flatnonzero(self.warm_), sampler, rng)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        self._epochs_seen = 0
        try:
            super()._fit(dataset, valid, seed)
        finally:
            self.text_init_ = None

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {
            "warm": np.asarray(self.warm_, dtype=np.int8),
            "text_nbrs": self.text_nbrs_,
            **self._text_extra_state(),
        }

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.warm_ = state["warm"].astype(bool)
        self.text_nbrs_ = np.asarray(state["text_nbrs"], dtype=np.int64)
        self._text_load_extra_state(state)

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        self._text_after_load()
