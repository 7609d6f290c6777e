"""KGAT-style model (Wang et al. 2019): attentive propagation over the collaborative knowledge
graph (CKG), trained jointly with BPR (``rec``) and TransR (``kg``) losses.

CKG nodes are the users followed by the KG entities; an item is the node of its linked entity
(items without a link get a node of their own). Edges: user—item ("interact", both directions)
and every KG triple with its inverse relation. Edge (h, r, t) lets h aggregate t with weight
π(h, r, t) = softmax_t((W_r e_t)ᵀ tanh(W_r e_h + e_r)). As in the authors' code and RecBole,
the attention weights are recomputed without gradient at the start of every epoch; the
propagation itself is a sparse matrix product (never a dense N×N matrix). In eval mode the
propagated user and item vectors are computed once and cached for full-ranking scoring.

Only user and item rows are ever scored, so each layer is computed just for the rows the next
layers need (``fusionrec.nn.kg.propagation_plan``): with the default single layer the
transforms run on ~2.6k user/item rows of ml-100k instead of all ~36k CKG nodes. Training
defaults (measured on ml-100k, see benchmarks/kg_ablation.py): node tables N(0, 0.1) (xavier
over 36k rows made them ~0.06 long and training crawl), BPR-like L2 2e-2 on the scored
vectors, Adam lr 5e-3, batches of 4096.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities
from fusionrec.models.kg.kge import JointConfig
from fusionrec.models.negatives import advance_epoch, negative_sampler
from fusionrec.models.registry import register
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.nn.kg import (
    AttentivePropagation,
    corrupt_triples,
    kg_pair_loss,
    propagation_plan,
    transr_pair_energies,
)
from fusionrec.nn.losses import bpr_loss, l2_reg

__all__ = ["KGAT", "KGATConfig", "build_ckg"]


class KGATConfig(JointConfig):
    """KGAT: attentive CKG propagation + BPR + TransR."""

    LOSS_TERMS: ClassVar[tuple[str, ...]] = ("rec", "kg", "reg")
    DEFAULT_WEIGHTS: ClassVar[dict[str, float]] = {"rec": 1.0, "kg": 1.0, "reg": 2e-2}

    _aliases: ClassVar[dict[str, str]] = {"dim": "embedding_dim", "layers": "hidden_dims"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    embedding_dim: int = Field(64, ge=1)
    """Node (user/entity) embedding dimension (was ``dim``)."""
    rel_dim: int = Field(64, ge=1)
    """Relation-space dimension (attention and TransR)."""
    hidden_dims: list[int] = Field(default_factory=lambda: [64])
    """Output size of each propagation layer (was ``layers``) (RecBole's default: one layer of 64). With one
    layer only the user and item rows are transformed; each further layer also transforms
    their KG neighbours (most of the graph on ml-100k), so it is much slower."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Message dropout after each layer."""
    kg_loss: Literal["margin", "softplus"] = "softplus"
    """TransR loss over (true, corrupted) triples."""
    margin: float = Field(1.0, gt=0)
    """Margin of the 'margin' KG loss."""
    kg_batch_size: int | None = Field(None, ge=1)
    """KG triples per batch (default: ``batch_size``)."""
    init_std: float = Field(0.1, ge=0)
    """Initial N(0, std) of every weight matrix (0 = xavier-normal). Xavier over the ~36k-row
    node table of ml-100k gives vectors of norm ~0.06, so the layer-0 (MF-like) part of the
    score starts near zero and training crawled (valid NDCG@10 0.11 after 4 epochs; with 0.1
    and reg 2e-2: 0.17 after 8, 0.21 after 20)."""
    epochs: int = Field(60, ge=1)
    """Maximum number of passes over the training data."""
    batch_size: int = Field(4096, ge=1)
    """Interactions per optimisation step."""
    lr: float = Field(5e-3, gt=0)
    """Learning rate."""
    patience: int = Field(5, ge=0)
    """Evaluations without improvement before stopping (0 = never stop early)."""


def build_ckg(
    n_users: int,
    item_entity: np.ndarray,
    n_entities: int,
    n_relations: int,
    pairs: np.ndarray,
    triples: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Collaborative KG. Returns ``edges`` (E, 3) as (dst, rel, src) node/relation indices
    (dst aggregates src), ``item_node`` (n_items,), ``n_nodes`` and ``n_rel`` (all relations:
    KG relations, their inverses, interact, interacted-by)."""
    unlinked = item_entity < 0
    item_node = np.where(unlinked, 0, item_entity + n_users).astype(np.int64)
    item_node[unlinked] = n_users + n_entities + np.arange(int(unlinked.sum()))
    n_nodes = n_users + n_entities + int(unlinked.sum())
    h, r, t = triples[:, 0] + n_users, triples[:, 1], triples[:, 2] + n_users
    u, i = pairs[:, 0], item_node[pairs[:, 1]]
    inter, inter_inv = 2 * n_relations, 2 * n_relations + 1
    dst = np.concatenate([h, t, u, i])
    rel = np.concatenate([r, r + n_relations, np.full(len(u), inter), np.full(len(u), inter_inv)])
    src = np.concatenate([t, h, i, u])
    edges = np.stack([dst, rel, src], axis=1).astype(np.int64)
    edges = edges[np.lexsort((edges[:, 2], edges[:, 0], edges[:, 1]))]  # grouped by relation
    return edges, item_node, n_nodes, 2 * n_relations + 2


class _KGATModule(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_nodes: int,
        n_rel: int,
        edges: np.ndarray,
        item_node: np.ndarray,
        cfg: KGATConfig,
    ) -> None:
        super().__init__()
        self.n_users, self.n_nodes = n_users, n_nodes
        self.node = nn.Embedding(n_nodes, cfg.embedding_dim)
        self.relation = nn.Embedding(n_rel, cfg.rel_dim)
        self.proj = nn.Parameter(torch.empty(n_rel, cfg.embedding_dim, cfg.rel_dim))
        self.prop = AttentivePropagation(cfg.embedding_dim, list(cfg.hidden_dims), cfg.dropout)
        e = torch.from_numpy(np.ascontiguousarray(edges))
        self.register_buffer("dst", e[:, 0].contiguous(), persistent=False)
        self.register_buffer("rel", e[:, 1].contiguous(), persistent=False)
        self.register_buffer("src", e[:, 2].contiguous(), persistent=False)
        self.register_buffer(
            "item_node", torch.from_numpy(item_node.astype(np.int64)), persistent=False
        )
        # attention weights of the current epoch: part of the state, so best-epoch restore and
        # save/load give exactly the propagation that was evaluated
        self.register_buffer("att", torch.zeros(len(edges)))
        bounds = np.searchsorted(edges[:, 1], np.arange(n_rel + 1))
        self._bounds = bounds.tolist()
        self.kg_loss_kind, self.margin = cfg.kg_loss, cfg.margin
        self.weights: dict[str, float] = {"rec": 1.0}
        self._cache: torch.Tensor | None = None
        # only user and item nodes are scored: propagate just what they need (see
        # AttentivePropagation.forward_rows); output row of node n = target_pos[n]
        targets = np.union1d(np.arange(n_users), item_node)
        plan = propagation_plan(edges[:, 0], edges[:, 2], targets, len(cfg.hidden_dims), n_nodes)
        self._plan_np = plan
        pos = np.full(n_nodes, -1, dtype=np.int64)
        pos[targets] = np.arange(len(targets))
        self.register_buffer("user_row", torch.arange(n_users), persistent=False)
        self.register_buffer(
            "item_row", torch.from_numpy(pos[item_node]).contiguous(), persistent=False
        )
        self._plan: list[dict[str, torch.Tensor]] | None = None

    def train(self, mode: bool = True) -> _KGATModule:
        self._cache = None
        return super().train(mode)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._cache = None
        self._plan = None
        return super().load_state_dict(*args, **kwargs)

    def plan(self) -> list[dict[str, torch.Tensor]]:
        """The propagation plan with this epoch's attention weights (built once per epoch)."""
        if self._plan is None:
            dev = self.att.device
            out = []
            for p in self._plan_np:
                idx = torch.from_numpy(np.stack([p["adj_rows"], p["adj_cols"]])).to(dev)
                val = self.att[torch.from_numpy(p["edges"]).to(dev)]
                adj = torch.sparse_coo_tensor(
                    idx, val, (len(p["rows"]), int(p["n_cols"])), check_invariants=False
                ).coalesce()
                step = {"adj": adj}
                for k in ("self_idx", "out_idx", "targets"):
                    if k in p:
                        step[k] = torch.from_numpy(p[k]).to(dev)
                out.append(step)
            self._plan = out
        return self._plan

    @torch.no_grad()
    def update_attention(self) -> None:
        """Recompute π for every edge from the current embeddings (no gradient)."""
        att = AttentivePropagation.attention(
            self.node.weight,
            self.relation.weight,
            self.proj,
            self.dst,
            self.src,
            self._bounds,
            self.n_nodes,
        )
        self.att.copy_(att)
        self._cache = None
        self._plan = None

    def adjacency(self) -> torch.Tensor:
        idx = torch.stack([self.dst, self.src])
        return torch.sparse_coo_tensor(
            idx, self.att, (self.n_nodes, self.n_nodes), check_invariants=False
        ).coalesce()

    def propagated(self) -> torch.Tensor:
        if not self.training and self._cache is not None:
            return self._cache
        out = self.prop.forward_rows(self.node.weight, self.plan())
        if not self.training:
            self._cache = out
        return out

    def score(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        x = self.propagated()
        rows = self.item_row if items is None else self.item_row[items]
        return x[self.user_row[users]] @ x[rows].T

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        w = self.weights
        x = self.propagated()
        u = self.user_row[batch["user"]]
        i, j = self.item_row[batch["pos"]], self.item_row[batch["neg"]]
        ue, ie, je = x[u], x[i], x[j]
        out = {"rec": w.get("rec", 1.0) * bpr_loss((ue * ie).sum(-1), (ue * je).sum(-1))}
        if "reg" in w:
            out["reg"] = w["reg"] * l2_reg(ue, ie, je, batch_size=len(u))
        if "kg" in w and "h" in batch:
            pos, neg = transr_pair_energies(self.node, batch, self.relation.weight, self.proj)
            out["kg"] = w["kg"] * kg_pair_loss(pos, neg, self.kg_loss_kind, self.margin)
        return out


@register("kgat")
class KGAT(TorchRecommender):
    """KGAT: attentive propagation over the collaborative KG; BPR + λ_kg·TransR jointly."""

    Config: ClassVar[type[KGATConfig]] = KGATConfig
    capabilities = Capabilities(needs_kg=True)

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        kg = dataset.kg
        m = dataset.matrix("csr")
        coo = m.tocoo()
        self._pairs = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
        self._sampler = negative_sampler(self, dataset, rng)
        n_ent, n_rel = len(kg.entities), max(len(kg.relations), 1)
        triples = np.stack([kg.head, kg.relation, kg.tail], axis=1).astype(np.int64)
        self.edges_, self.item_node_, n_nodes, n_rel_all = build_ckg(
            self.n_users, np.asarray(kg.item_entity), n_ent, n_rel, self._pairs, triples
        )
        self.sizes_ = np.array([n_nodes, n_rel_all], dtype=np.int64)
        # KG triples over node indices for the TransR loss
        self._kg_nodes = np.stack(
            [triples[:, 0] + self.n_users, triples[:, 1], triples[:, 2] + self.n_users], axis=1
        )
        self._n_ent_nodes = (self.n_users, n_nodes)
        self._epoch = 0

    def build_module(self) -> nn.Module:
        return _KGATModule(
            self.n_users,
            int(self.sizes_[0]),
            int(self.sizes_[1]),
            self.edges_,
            self.item_node_,
            self.config,
        )

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {"edges": self.edges_, "item_node": self.item_node_, "sizes": self.sizes_}

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.edges_, self.item_node_, self.sizes_ = (
            state["edges"],
            state["item_node"],
            state["sizes"],
        )

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        self._epoch += 1
        advance_epoch(self, self._sampler)
        mod = self.module_
        mod.weights = self.config.weights_at(self._epoch)
        mod.update_attention()
        pairs = self._pairs[rng.permutation(len(self._pairs))]
        bs = self.config.batch_size
        lo, hi = self._n_ent_nodes
        for s in range(0, len(pairs), bs):
            b = pairs[s : s + bs]
            arrays = {
                "user": b[:, 0],
                "pos": b[:, 1],
                "neg": self._sampler.sample(b[:, 0], 1, rng)[:, 0],
            }
            if "kg" in mod.weights and len(self._kg_nodes):
                t = self._kg_nodes[
                    rng.integers(0, len(self._kg_nodes), size=self.config.kg_batch_size or len(b))
                ]
                hn, tn = corrupt_triples(t[:, 0] - lo, t[:, 2] - lo, hi - lo, rng)
                arrays |= {
                    "h": t[:, 0],
                    "r": t[:, 1],
                    "t": t[:, 2],
                    "h_neg": hn + lo,
                    "t_neg": tn + lo,
                }
            yield {
                k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device_)
                for k, v in arrays.items()
            } | {"n_samples": len(b)}

    def _init_std(self) -> float:
        return self.config.init_std

    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        return self.module_.score(users, items)

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        self.module_.eval()
        return self.module_.propagated()[self.module_.item_row].float().cpu().numpy()
