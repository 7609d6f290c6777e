"""Knowledge-graph building blocks: translational scores, corrupted-triple losses, and the
attentive propagation layer of KGAT (sparse, scatter-based: no dense N x N matrix).

Shapes: ``h``, ``t`` are (B, d) entity vectors, ``r`` (B, d_r) relation vectors, ``proj``
(B, d, d_r) per-relation projections (TransR).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "transe_distance",
    "transr_distance",
    "project_by_relation",
    "transr_energy",
    "transr_pair_energies",
    "kg_pair_loss",
    "corrupt_triples",
    "TransEModule",
    "TransRModule",
    "edge_softmax",
    "AttentivePropagation",
    "bi_interaction",
    "propagation_plan",
]


def transe_distance(
    h: torch.Tensor, r: torch.Tensor, t: torch.Tensor, norm: int = 2
) -> torch.Tensor:
    """TransE energy ||h + r - t|| per row (lower = more plausible)."""
    return torch.linalg.vector_norm(h + r - t, ord=norm, dim=-1)


def transr_distance(
    h: torch.Tensor, r: torch.Tensor, t: torch.Tensor, proj: torch.Tensor
) -> torch.Tensor:
    """TransR energy ||h M_r + r - t M_r||² per row, with projected entities L2-normalised."""
    hp = F.normalize(torch.bmm(h.unsqueeze(1), proj).squeeze(1), dim=-1)
    tp = F.normalize(torch.bmm(t.unsqueeze(1), proj).squeeze(1), dim=-1)
    return (hp + r - tp).pow(2).sum(-1)


def project_by_relation(x: torch.Tensor, r: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    """``x[b] @ proj[r[b]]`` for each row, as one matrix product per distinct relation.

    Gathering ``proj[r]`` as a (B, d, d_r) tensor and scattering its gradient back is what made
    TransR slow on CPU (a 4096-triple batch moves 4096 d x d_r matrices twice per step, ~10 s
    per ml-100k epoch); grouping rows by relation does the same arithmetic in place."""
    if len(r) == 0:
        return x.new_zeros(0, proj.shape[-1])
    order = torch.argsort(r, stable=True)
    rel, counts = torch.unique_consecutive(r[order], return_counts=True)
    chunks = x[order].split(counts.tolist())
    out = torch.cat([c @ proj[k] for c, k in zip(chunks, rel.tolist(), strict=True)])
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return out[inverse]


def transr_energy(
    h: torch.Tensor, r: torch.Tensor, t: torch.Tensor, rel_emb: torch.Tensor, proj: torch.Tensor
) -> torch.Tensor:
    """TransR energy like :func:`transr_distance`, from relation indices ``r`` (B,), all
    relation vectors ``rel_emb`` (R, d_r) and all projections ``proj`` (R, d, d_r)."""
    both = project_by_relation(torch.cat([h, t]), torch.cat([r, r]), proj)
    hp, tp = F.normalize(both, dim=-1).chunk(2)
    return (hp + rel_emb[r] - tp).pow(2).sum(-1)


def transr_pair_energies(
    entity: nn.Embedding,
    batch: dict[str, torch.Tensor],
    rel_emb: torch.Tensor,
    proj: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TransR energies of the true (``h``, ``r``, ``t``) and corrupted (``h_neg``, ``r``,
    ``t_neg``) triples of ``batch``, entities L2-normalised. One lookup of the entity table and
    one grouped projection for all four entity lists: each lookup of a large table costs a
    dense gradient of the whole table in backward."""
    n = len(batch["h"])
    idx = torch.cat([batch["h"], batch["h_neg"], batch["t"], batch["t_neg"]])
    e = F.normalize(entity(idx), dim=-1)
    energy = transr_energy(e[: 2 * n], batch["r"].repeat(2), e[2 * n :], rel_emb, proj)
    return energy[:n], energy[n:]


def kg_pair_loss(
    pos: torch.Tensor,
    neg: torch.Tensor,
    kind: Literal["margin", "softplus"] = "margin",
    margin: float = 1.0,
) -> torch.Tensor:
    """Mean loss over (true, corrupted) energy pairs: margin ranking max(0, m + pos - neg) or
    the smooth softplus(pos - neg) (the BPR form used by CKE/KGAT in RecBole)."""
    if kind == "margin":
        return F.relu(margin + pos - neg).mean()
    if kind == "softplus":
        return F.softplus(pos - neg).mean()
    raise ValueError(f"unknown KG loss {kind!r}; choose 'margin' or 'softplus'")


def corrupt_triples(
    head: np.ndarray, tail: np.ndarray, n_entities: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replace the head or the tail (each with probability 1/2) by a uniform random entity."""
    n = len(head)
    which = rng.random(n) < 0.5
    rand = rng.integers(0, n_entities, size=n, dtype=np.int64)
    h2 = np.where(which, rand, head)
    t2 = np.where(which, tail, rand)
    return h2.astype(np.int64), t2.astype(np.int64)


class TransEModule(nn.Module):
    """TransE (Bordes et al. 2013): entities and relations in one space, h + r ≈ t."""

    def __init__(
        self, n_entities: int, n_relations: int, dim: int, margin: float = 1.0, loss: str = "margin"
    ) -> None:
        super().__init__()
        self.entity = nn.Embedding(n_entities, dim)
        self.relation = nn.Embedding(n_relations, dim)
        self.margin = margin
        self.loss_kind = loss

    def entity_vectors(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised entity vectors (all, or the given indices)."""
        w = self.entity.weight if idx is None else self.entity(idx)
        return F.normalize(w, dim=-1)

    def energy(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return transe_distance(self.entity_vectors(h), self.relation(r), self.entity_vectors(t))

    def tail_energies(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """(B, n_entities) energy of every entity as the tail of (h, r, ?)."""
        q = self.entity_vectors(h) + self.relation(r)
        return torch.cdist(q, self.entity_vectors())

    def head_energies(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        q = self.entity_vectors(t) - self.relation(r)
        return torch.cdist(q, self.entity_vectors())

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pos = self.energy(batch["h"], batch["r"], batch["t"])
        neg = self.energy(batch["h_neg"], batch["r"], batch["t_neg"])
        return {"kg": kg_pair_loss(pos, neg, self.loss_kind, self.margin)}


class TransRModule(nn.Module):
    """TransR (Lin et al. 2015): entities (dim d) projected into a relation space (dim d_r) by M_r."""

    def __init__(
        self,
        n_entities: int,
        n_relations: int,
        dim: int,
        rel_dim: int | None = None,
        margin: float = 1.0,
        loss: str = "margin",
    ) -> None:
        super().__init__()
        rel_dim = rel_dim or dim
        self.entity = nn.Embedding(n_entities, dim)
        self.relation = nn.Embedding(n_relations, rel_dim)
        self.proj = nn.Parameter(torch.empty(n_relations, dim, rel_dim))
        self.margin = margin
        self.loss_kind = loss

    def entity_vectors(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        w = self.entity.weight if idx is None else self.entity(idx)
        return F.normalize(w, dim=-1)

    def energy(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return transr_energy(
            self.entity_vectors(h), r, self.entity_vectors(t), self.relation.weight, self.proj
        )

    def _projected_all(self, r: torch.Tensor) -> torch.Tensor:
        # (B, n_entities, d_r): every entity projected by each query's relation
        return F.normalize(torch.einsum("nd,bde->bne", self.entity_vectors(), self.proj[r]), dim=-1)

    def tail_energies(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        hp = F.normalize(torch.bmm(self.entity_vectors(h).unsqueeze(1), self.proj[r]), dim=-1)
        q = hp + self.relation(r).unsqueeze(1)
        return (q - self._projected_all(r)).pow(2).sum(-1)

    def head_energies(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tp = F.normalize(torch.bmm(self.entity_vectors(t).unsqueeze(1), self.proj[r]), dim=-1)
        q = tp - self.relation(r).unsqueeze(1)
        return (self._projected_all(r) - q).pow(2).sum(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pos = self.energy(batch["h"], batch["r"], batch["t"])
        neg = self.energy(batch["h_neg"], batch["r"], batch["t_neg"])
        return {"kg": kg_pair_loss(pos, neg, self.loss_kind, self.margin)}


def edge_softmax(logits: torch.Tensor, dst: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Softmax of edge ``logits`` over the edges that share a destination (scatter ops)."""
    m = torch.full((n_nodes,), float("-inf"), dtype=logits.dtype, device=logits.device)
    m = m.scatter_reduce(0, dst, logits, reduce="amax", include_self=True)
    e = torch.exp(logits - m[dst])
    s = torch.zeros(n_nodes, dtype=logits.dtype, device=logits.device).index_add_(0, dst, e)
    return e / s[dst].clamp_min(1e-12)


def bi_interaction(
    ego: torch.Tensor, side: torch.Tensor, w1: nn.Linear, w2: nn.Linear, slope: float = 0.2
) -> torch.Tensor:
    """KGAT's bi-interaction aggregator: LeakyReLU(W1(e + e_N)) + LeakyReLU(W2(e ⊙ e_N))."""
    return F.leaky_relu(w1(ego + side), slope) + F.leaky_relu(w2(ego * side), slope)


class AttentivePropagation(nn.Module):
    """Stack of KGAT layers over a fixed edge list (src -> dst, relation per edge).

    Attention weights ``π(h, r, t) = (W_r e_t)ᵀ tanh(W_r e_h + e_r)``, normalised over each
    node's incoming edges, are computed by :meth:`attention` (RecBole recomputes them once per
    epoch without gradient; so does KGAT's reference code) and handed to :meth:`forward`,
    which propagates with a sparse matrix product.
    """

    def __init__(self, dim: int, layer_dims: list[int], dropout: float = 0.1) -> None:
        super().__init__()
        dims = [dim, *layer_dims]
        self.w1 = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(layer_dims)))
        self.w2 = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(layer_dims)))
        self.dropout = nn.Dropout(dropout)

    @property
    def out_dim(self) -> int:
        return self.w1[0].in_features + sum(lin.out_features for lin in self.w1)

    @staticmethod
    @torch.no_grad()
    def attention(
        ego: torch.Tensor,
        rel_emb: torch.Tensor,
        proj: torch.Tensor,
        dst: torch.Tensor,
        src: torch.Tensor,
        bounds: list[int],
        n_nodes: int,
    ) -> torch.Tensor:
        """Normalised attention weight per edge (``dst`` aggregates ``src``), without gradient.

        Edges must be grouped by relation: edges ``bounds[r]:bounds[r + 1]`` have relation r
        (one matrix product per relation instead of a (E, d, d_r) gather)."""
        logits = torch.empty(len(dst), dtype=ego.dtype, device=ego.device)
        for r in range(len(bounds) - 1):
            a, b = bounds[r], bounds[r + 1]
            if a == b:
                continue
            h = ego[dst[a:b]] @ proj[r]
            t = ego[src[a:b]] @ proj[r]
            logits[a:b] = (t * torch.tanh(h + rel_emb[r])).sum(-1)
        return edge_softmax(logits, dst, n_nodes)

    def forward_rows(self, ego: torch.Tensor, plan: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """Like :meth:`forward`, but only for the target rows of a :func:`propagation_plan`
        (e.g. the user and item nodes, the only ones a recommender scores): layer k is computed
        only on the nodes the remaining layers need, so with one layer the transforms run on
        users + items instead of every KG entity. ``plan[k]`` holds ``adj`` (sparse,
        rows of layer k x rows of layer k-1), ``self_idx`` (layer k's rows among layer
        k-1's) and ``out_idx`` (the targets among layer k's rows); layer 0 is the full ``ego``."""
        outs = [ego[plan[-1]["targets"]]]
        x = ego
        for (w1, w2), step in zip(zip(self.w1, self.w2, strict=True), plan, strict=True):
            side = torch.sparse.mm(step["adj"], x)
            x = self.dropout(bi_interaction(x[step["self_idx"]], side, w1, w2))
            outs.append(F.normalize(x[step["out_idx"]], dim=-1))
        return torch.cat(outs, dim=-1)

    def forward(self, ego: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """All layers' outputs concatenated (L2-normalised per layer), ``adj``: sparse (N, N)."""
        outs = [ego]
        x = ego
        for w1, w2 in zip(self.w1, self.w2, strict=True):
            side = torch.sparse.mm(adj, x)
            x = self.dropout(bi_interaction(x, side, w1, w2))
            outs.append(F.normalize(x, dim=-1))
        return torch.cat(outs, dim=-1)


def propagation_plan(
    dst: np.ndarray, src: np.ndarray, targets: np.ndarray, n_layers: int, n_nodes: int
) -> list[dict[str, np.ndarray]]:
    """Which rows each propagation layer must compute so that the last layer gives ``targets``
    (sorted unique node ids): rows of layer L = targets, rows of layer k-1 = rows of layer k
    plus their in-neighbours (``dst`` aggregates ``src``). Per layer (1..L): ``rows`` (global
    ids), ``edges`` (indices of the edges into those rows), ``adj_rows``/``adj_cols`` (each
    edge's row among this layer's rows and column among the previous layer's, global for layer
    1), ``self_idx`` and ``out_idx`` (see :meth:`AttentivePropagation.forward_rows`)."""
    rows = [np.asarray(targets, dtype=np.int64)]
    into = np.zeros(n_nodes, dtype=bool)
    for _ in range(n_layers - 1):
        into[:] = False
        into[rows[0]] = True
        rows.insert(0, np.union1d(rows[0], src[into[dst]]))
    prev = np.arange(n_nodes, dtype=np.int64)  # layer 0: the full ego table
    plan = []
    for r in rows:
        pos_prev = np.full(n_nodes, -1, dtype=np.int64)
        pos_prev[prev] = np.arange(len(prev))
        pos = np.full(n_nodes, -1, dtype=np.int64)
        pos[r] = np.arange(len(r))
        edges = np.flatnonzero(pos[dst] >= 0)
        plan.append(
            {
                "rows": r,
                "edges": edges,
                "adj_rows": pos[dst[edges]],
                "adj_cols": pos_prev[src[edges]],
                "n_cols": np.int64(len(prev)),
                "self_idx": pos_prev[r],
                "out_idx": pos[targets],
            }
        )
        prev = r
    plan[-1]["targets"] = np.asarray(targets, dtype=np.int64)
    return plan
