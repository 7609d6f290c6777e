"""Knowledge-graph paths from a user's history items to a recommended item (``cke``, ``kgat``).

A path is a chain ``history item -r1- entity -r2- ... - item`` over the dataset's KG triples,
walked in either direction (an inverse step is shown as ``^relation``). Paths of up to
``max_hops`` (1-3) are found by meeting in the middle: the target's neighbourhood (1 or 2
hops) is intersected with each history item's. Hub entities (degree above ``max_degree``,
e.g. a country every film links to) are not walked through.

Each path gets a weight:

* KGAT: the product, along the path, of the model's attention π(dst, r, src) on each step's
  edge, read from the saved collaborative-KG attention (the message that flows toward the
  target) — KGAT's own notion of which paths carry its propagation;
* otherwise (CKE): the history item's contribution (cosine of the model's item vectors with
  the target) times each intermediate entity's specificity 1/log2(1 + degree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fusionrec.data.dataset import KnowledgeGraph

__all__ = ["KGPath", "kg_paths", "KGPathFinder"]


@dataclass(frozen=True)
class KGPath:
    """``nodes``: entity indices from the history item's entity to the target's;
    ``relations``: one label per step (``^`` = walked against the triple's direction)."""

    history_item: int
    item: int
    nodes: tuple[int, ...]
    relations: tuple[str, ...]
    weight: float

    def describe(self, entity_names: Sequence[str], item_names: dict[int, str] | None = None) -> str:
        names = [str(entity_names[n]) for n in self.nodes]
        if item_names:
            names[0] = item_names.get(self.history_item, names[0])
            names[-1] = item_names.get(self.item, names[-1])
        out = names[0]
        for r, n in zip(self.relations, names[1:], strict=True):
            out += f" -[{r}]- {n}"
        return out


class KGPathFinder:
    """Paths over one KG; build once, query many (history, item) pairs."""

    def __init__(
        self,
        kg: KnowledgeGraph,
        edge_weight: dict[tuple[int, int, int], float] | None = None,
        max_degree: int = 300,
    ) -> None:
        self.kg = kg
        n = len(kg.entities)
        self.n_rel = max(len(kg.relations), 1)
        h, r, t = (np.asarray(a, dtype=np.int64) for a in (kg.head, kg.relation, kg.tail))
        # undirected adjacency; data = relation code (r for h->t, r + n_rel for the inverse step t->h)
        rows = np.concatenate([h, t])
        cols = np.concatenate([t, h])
        rel = np.concatenate([r, r + self.n_rel])
        order = np.lexsort((rel, cols, rows))
        rows, cols, rel = rows[order], cols[order], rel[order]
        self.indptr = np.searchsorted(rows, np.arange(n + 1))
        self.nbr, self.rel = cols, rel
        self.degree = np.diff(self.indptr)
        self.adj = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        self.adj.data[:] = 1.0
        self.edge_weight = edge_weight
        self.max_degree = max_degree
        self.rel_names = [str(x) for x in kg.relations.ids] if len(kg.relations) else ["r"]

    def _neighbours(self, e: int) -> tuple[np.ndarray, np.ndarray]:
        s, t = self.indptr[e], self.indptr[e + 1]
        return self.nbr[s:t], self.rel[s:t]

    def _rel_label(self, code: int) -> str:
        return self.rel_names[code] if code < self.n_rel else "^" + self.rel_names[code - self.n_rel]

    def _step_weight(self, a: int, code: int, b: int) -> float:
        """Weight of walking a -> b: KGAT's attention on the edge that carries a's message to b
        (dst=b, src=a). Walking h -> t forward (code r) is KGAT's edge (t, r + n_rel, h); walking
        t -> h (code r + n_rel) is its edge (h, r, t). 1 when no attention is given."""
        if self.edge_weight is None:
            return 1.0
        kgat_rel = (code + self.n_rel) % (2 * self.n_rel)
        return float(self.edge_weight.get((b, kgat_rel, a), 0.0))

    def _specificity(self, e: int) -> float:
        return 1.0 / np.log2(1.0 + max(int(self.degree[e]), 1))

    def paths(
        self,
        history: np.ndarray,
        item: int,
        max_hops: int = 2,
        top: int = 5,
        item_score: np.ndarray | None = None,
        per_pair: int = 3,
    ) -> list[KGPath]:
        """Up to ``top`` best paths from any history item to ``item``; ``item_score[h]`` weighs
        the history item (non-attention weighting); at most ``per_pair`` per history item."""
        if not 1 <= max_hops <= 3:
            raise ValueError(f"max_hops must be 1, 2 or 3, got {max_hops}")
        ie = np.asarray(self.kg.item_entity)
        target = int(ie[item]) if 0 <= item < len(ie) else -1
        if target < 0:
            return []
        tn, tr = self._neighbours(target)
        t_rel = {int(x): int(c) for x, c in zip(tn, tr, strict=True)}  # neighbour -> relation code (x -> target side)
        found: list[KGPath] = []
        for h in np.asarray(history, dtype=np.int64):
            src = int(ie[h]) if 0 <= h < len(ie) else -1
            if src < 0 or src == target:
                continue
            cand: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
            hn, hr = self._neighbours(src)
            for x, c in zip(hn.tolist(), hr.tolist(), strict=True):
                if x == target:
                    cand.append(((src, target), (c,)))
            if max_hops >= 2:
                for x, c in zip(hn.tolist(), hr.tolist(), strict=True):
                    if x in t_rel and x != target and self.degree[x] <= self.max_degree:
                        back = (t_rel[x] + self.n_rel) % (2 * self.n_rel)  # x -> target is the inverse of target -> x
                        cand.append(((src, x, target), (c, back)))
            if max_hops >= 3 and not cand:
                for x, c in zip(hn.tolist(), hr.tolist(), strict=True):
                    if self.degree[x] > self.max_degree or x == target:
                        continue
                    xn, xr = self._neighbours(x)
                    for y, c2 in zip(xn.tolist(), xr.tolist(), strict=True):
                        if y in t_rel and y not in (src, target) and self.degree[y] <= self.max_degree:
                            back = (t_rel[y] + self.n_rel) % (2 * self.n_rel)
                            cand.append(((src, x, y, target), (c, c2, back)))
            scored = []
            for nodes, codes in cand:
                if self.edge_weight is not None:
                    w = float(np.prod([self._step_weight(a, c, b) for a, c, b in zip(nodes[:-1], codes, nodes[1:], strict=True)]))
                else:
                    base = 1.0 if item_score is None else float(item_score[h])
                    w = base * float(np.prod([self._specificity(e) for e in nodes[1:-1]] or [1.0]))
                scored.append(KGPath(int(h), int(item), nodes, tuple(self._rel_label(c) for c in codes), w))
            scored.sort(key=lambda p: -p.weight)
            found.extend(scored[:per_pair])
        found.sort(key=lambda p: (-p.weight, len(p.nodes)))
        return found[:top]


def kgat_edge_weights(model: object) -> dict[tuple[int, int, int], float] | None:
    """KGAT's attention per KG edge as {(dst_entity, kgat_rel, src_entity): π} (KGAT's codes:
    r = the head receives from the tail, r + n_rel = the tail from the head); None if absent."""
    edges = getattr(model, "edges_", None)
    mod = getattr(model, "module_", None)
    if edges is None or mod is None or not hasattr(mod, "att"):
        return None
    att = mod.att.detach().float().cpu().numpy()
    n_users = int(model.n_users)  # type: ignore[attr-defined]
    e = np.asarray(edges)
    dst, rel, src = e[:, 0] - n_users, e[:, 1], e[:, 2] - n_users
    keep = (dst >= 0) & (src >= 0)  # KG edges only: interaction edges have a user end
    return {(int(d), int(r), int(s)): float(a) for d, r, s, a in zip(dst[keep], rel[keep], src[keep], att[keep], strict=True)}


def kg_paths(
    kg: KnowledgeGraph,
    history: np.ndarray,
    item: int,
    model: object | None = None,
    max_hops: int = 2,
    top: int = 5,
) -> list[KGPath]:
    """Best KG paths from ``history`` items to ``item`` (see the module docstring)."""
    weights = kgat_edge_weights(model) if model is not None else None
    finder = KGPathFinder(kg, weights)
    score = None
    if weights is None and model is not None and hasattr(model, "item_vectors"):
        v = model.item_vectors()
        if v is not None:
            v = np.asarray(v, dtype=np.float64)
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            score = np.maximum(v @ v[item], 0.0)
    return finder.paths(history, item, max_hops, top, score)
