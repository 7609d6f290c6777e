"""Matrix factorisation whose item vector fuses side information, trained on one joint objective.

- ``mm_mf``: BPR-MF where item = fusion(ID embedding, named item modalities) — the modalities
  come from ``Dataset.item_embeddings`` (text, image, audio ...; NaN rows = missing) and are
  fused by ``fusionrec.nn.fusion.ModalityFusion`` (add / concat / gate / attention).
- ``cke`` (Zhang et al. 2016, Collaborative Knowledge base Embedding): as ``mm_mf`` with the
  item's KG entity embedding added to its ID embedding, the entity embeddings being trained
  jointly by a TransR loss on the KG triples. Items without a KG link share a learned default
  entity vector.

Loss terms (``loss_weights``): ``rec`` (BPR), ``kg`` (TransR, cke only), ``reg`` (L2 of the
batch's user vectors and item vectors without their KG entity part: ID [+ fused modalities]).
Each is returned already weighted and logged by the Trainer.

Training recipe = ``bpr``'s (models/bpr.py), so the ID-only variant is as strong as plain BPR-MF
and the ablation's comparisons are against a real baseline: xavier-normal init, one uniform
negative per positive, L2 weight 2e-2 through ``l2_reg`` (which halves: = BPR's reg_weight 1e-2),
Adam at lr 5e-3, batches of 4096, up to 200 epochs with early stopping (patience 10) on valid
NDCG@10.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities
from fusionrec.models.kg.cold_items import choose_cold_weight, warm_kg_neighbours
from fusionrec.models.kg.kge import JointConfig, kg_triples
from fusionrec.models.negatives import advance_epoch, negative_sampler
from fusionrec.models.registry import register
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.nn.fusion import ModalityFusion
from fusionrec.nn.kg import corrupt_triples, kg_pair_loss, transr_pair_energies
from fusionrec.nn.losses import bpr_loss, l2_reg

__all__ = ["MMMF", "MMMFConfig", "CKE", "CKEConfig"]

FusionKind = Literal["add", "concat", "gate", "attention"]


class MMMFConfig(JointConfig):
    """Multimodal BPR-MF (defaults: the ``bpr`` model's recipe, see the module doc)."""

    DEFAULT_WEIGHTS: ClassVar[dict[str, float]] = {"rec": 1.0, "reg": 2e-2}
    _aliases: ClassVar[dict[str, str]] = {"dim": "embedding_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    embedding_dim: int = Field(64, ge=1)
    """Embedding dimension of users and (fused) items (was ``dim``)."""
    modalities: list[str] = Field(default_factory=list)
    """Names of ``Dataset.item_embeddings`` to fuse with the ID embedding ([] = ID only)."""
    fusion: FusionKind = "add"
    """Fusion module kind (fusionrec.nn.fusion.ModalityFusion)."""
    standardize: bool = True
    """Centre each modality matrix (per column, over present rows) and scale it by one factor so
    that the mean squared row norm is 1, before fusion."""
    id_dropout: float = Field(0.0, ge=0, lt=1)
    """Probability of zeroing an item's ID vector in training (pushes the model onto its modalities)."""
    epochs: int = Field(200, ge=1)
    """Maximum number of passes over the training data."""
    batch_size: int = Field(4096, ge=1)
    """Interactions per optimisation step."""
    lr: float = Field(5e-3, gt=0)
    """Learning rate."""


class _FusedMFModule(nn.Module):
    """Users, items (ID [+ entity] fused with modalities); optional TransR part for the KG."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        modalities: dict[str, np.ndarray],
        fusion: str,
        id_dropout: float,
        warm: np.ndarray,
        item_entity: np.ndarray | None = None,
        n_entities: int = 0,
        n_relations: int = 0,
        rel_dim: int = 0,
        kg_loss: str = "softplus",
        margin: float = 1.0,
        cold: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None,
    ) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.names = list(modalities)
        for k, m in modalities.items():
            mask = ~np.isnan(m).any(1)
            self.register_buffer(
                f"mod_{k}",
                torch.from_numpy(np.nan_to_num(m, nan=0.0).astype(np.float32)),
                persistent=False,
            )
            self.register_buffer(f"mask_{k}", torch.from_numpy(mask), persistent=False)
        # items without training interactions have an untrained ID vector: it is masked out
        self.register_buffer(
            "warm", torch.from_numpy(np.asarray(warm, dtype=bool)), persistent=False
        )
        self.fusion = (
            ModalityFusion(fusion, dim, {k: m.shape[1] for k, m in modalities.items()}, dim)
            if modalities
            else None
        )
        self.id_dropout = id_dropout
        self.has_kg = item_entity is not None
        if self.has_kg:
            # row n_entities = the learned default entity of unlinked items
            self.entity = nn.Embedding(n_entities + 1, dim)
            self.relation = nn.Embedding(n_relations, rel_dim)
            self.proj = nn.Parameter(torch.empty(n_relations, dim, rel_dim))
            ie = np.where(item_entity >= 0, item_entity, n_entities)
            self.register_buffer(
                "item_entity", torch.from_numpy(ie.astype(np.int64)), persistent=False
            )
            self.kg_loss_kind = kg_loss
            self.margin = margin
        self.weights: dict[str, float] = {"rec": 1.0}
        self._cache: torch.Tensor | None = None
        # cold items (no training interactions) read their ID part out of warm KG neighbours
        # (fusionrec.models.kg.cold_items); None = the ID part of a cold item stays zero
        self.has_cold = cold is not None and len(cold[0]) > 0
        if self.has_cold:
            rows, nbrs, wts, weight = cold
            pos = np.full(n_items, -1, np.int64)
            pos[rows] = np.arange(len(rows))
            self.register_buffer("cold_pos", torch.from_numpy(pos), persistent=False)
            self.register_buffer("cold_nbrs", torch.from_numpy(nbrs.astype(np.int64)), persistent=False)
            self.register_buffer("cold_wts", torch.from_numpy(wts.astype(np.float32)), persistent=False)
            self.cold_weight = float(weight)

    def set_cold_weight(self, weight: float) -> None:
        """Scale of the cold items' read-out ID part (drops the cached item vectors)."""
        self.cold_weight = float(weight)
        self._cache = None

    def _cold_id_part(self, ids: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """``base`` with each cold item's (zero) ID vector replaced by its KG read-out."""
        pos = self.cold_pos[ids]
        hit = pos >= 0
        if not bool(hit.any()):
            return base
        p = pos[hit]
        read = (self.item(self.cold_nbrs[p]) * self.cold_wts[p].unsqueeze(-1)).sum(1)
        full = torch.zeros_like(base)
        full[hit] = self.cold_weight * read.to(base.dtype)
        return torch.where(hit.unsqueeze(-1), full, base)

    # ---------------------------------------------------------------- caching in eval mode
    def train(self, mode: bool = True) -> _FusedMFModule:
        self._cache = None
        return super().train(mode)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._cache = None
        return super().load_state_dict(*args, **kwargs)

    def item_vectors(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Fused item vectors (all items, or ``idx``)."""
        if idx is None and not self.training and self._cache is not None:
            return self._cache
        ids = (
            torch.arange(self.item.num_embeddings, device=self.item.weight.device)
            if idx is None
            else idx
        )
        v, _ = self._fused(ids, with_reg=False)
        if idx is None and not self.training:
            self._cache = v
        return v

    def _fused(self, ids: torch.Tensor, with_reg: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(fused item vectors, the same without the KG entity part when ``with_reg``).

        The second is what ``reg`` penalises: the ID embedding and what the modalities add,
        not the entity vector. Measured on ml-100k (RS 8:1:1): leaving the fused text part
        unpenalised (only the ID embedding) let it overfit (+text NDCG@10 0.2571 vs 0.2795);
        penalising the entity part too (RecBole's CKE) pulled +KG below ID-only (0.2892 vs
        0.2929; 0.2924 without it)."""
        keep = self.warm[ids]
        if self.training and self.id_dropout > 0:
            keep = keep & (torch.rand(len(ids), device=keep.device) >= self.id_dropout)
        base = self.item(ids) * keep.unsqueeze(-1).to(self.item.weight.dtype)
        if self.has_cold:
            base = self._cold_id_part(ids, base)
        v, v_keep = base, keep
        if self.has_kg:
            v = base + self.entity(self.item_entity[ids])
            v_keep = torch.ones_like(keep)  # the entity part is always there (learned default)
        if self.fusion is None:
            return v, base if with_reg else None
        mods = {k: getattr(self, f"mod_{k}")[ids] for k in self.names}
        masks = {k: getattr(self, f"mask_{k}")[ids] for k in self.names}
        fused = self.fusion(v, mods, masks | {"id": v_keep})
        if not with_reg:
            return fused, None
        if not self.has_kg:
            return fused, fused
        return fused, self.fusion(base, mods, masks | {"id": keep})

    def score(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        u = self.user(users)
        if items is None:
            return u @ self.item_vectors().T
        return u @ self.item_vectors(items).T

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        w = self.weights
        u, i, j = batch["user"], batch["pos"], batch["neg"]
        ue = self.user(u)
        iv, rv = self._fused(torch.cat([i, j]), with_reg="reg" in w)
        pi, nj = iv[: len(i)], iv[len(i) :]
        out: dict[str, torch.Tensor] = {}
        out["rec"] = w.get("rec", 1.0) * bpr_loss((ue * pi).sum(-1), (ue * nj).sum(-1))
        if "reg" in w:
            # users and item vectors without their KG entity part (see _fused); ID-only: = BPR
            out["reg"] = w["reg"] * l2_reg(ue, rv[: len(i)], rv[len(i) :], batch_size=len(u))
        if self.has_kg and "kg" in w and "h" in batch:
            pos, neg = transr_pair_energies(self.entity, batch, self.relation.weight, self.proj)
            out["kg"] = w["kg"] * kg_pair_loss(pos, neg, self.kg_loss_kind, self.margin)
        return out


def _standardized(m: np.ndarray) -> np.ndarray:
    present = ~np.isnan(m).any(1)
    out = m.astype(np.float32).copy()
    if present.sum() > 1:
        mu = out[present].mean(0)
        sd = out[present].std(0)
        # one global scale keeps the relative size of directions (a per-column scale blows up
        # noise); it makes the mean squared row norm 1, so that a projected modality starts at
        # the scale of the ID embeddings (a unit variance per column made a 384-d text vector
        # ~40x longer than an item's ID vector, which swamped it: +text scored below ID-only)
        scale = float(np.sqrt((sd**2).sum())) or 1.0
        out[present] = (out[present] - mu) / scale
    return out


@register("mm_mf")
class MMMF(TorchRecommender):
    """Multimodal BPR-MF: item vector = fusion(ID embedding, named item modalities)."""

    Config: ClassVar[type[MMMFConfig]] = MMMFConfig
    #: the defaults (no modalities): an item is its ID vector only, so an item without training
    #: interactions carries no signal; an instance configured with modalities declares
    #: ``cold_start_items`` (see ``configured_capabilities``)
    capabilities = Capabilities()

    def __init__(self, config: MMMFConfig | dict | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        # the declared capabilities follow the config (the conformance checks verify them)
        self.capabilities = self.configured_capabilities(self.config)

    @classmethod
    def configured_capabilities(cls, config: MMMFConfig) -> Capabilities:
        """What a model with ``config`` can do: cold items only through fused modalities."""
        return replace(cls.capabilities, cold_start_items=bool(config.modalities))

    # ------------------------------------------------------------------ data
    def _modalities(self, dataset: Dataset) -> dict[str, np.ndarray]:
        out = {}
        for name in self.config.modalities:
            if name not in dataset.item_embeddings:
                have = sorted(dataset.item_embeddings) or "none"
                raise ConfigError(
                    f"model {self.name!r}: modality {name!r} is not attached to dataset {dataset.name!r} (have: {have}); use fusionrec.data.modalities.attach_modality"
                )
            m = np.asarray(dataset.item_embeddings[name], dtype=np.float32)
            out[name] = _standardized(m) if self.config.standardize else m.copy()
        return out

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        self.modalities_ = self._modalities(dataset)
        self.warm_ = (dataset.item_popularity() > 0).astype(np.uint8)
        self._epoch = 0
        m = dataset.matrix("csr")
        # negatives only among warm items: a cold item drawn as a negative (never a positive)
        # gets its side-information part pushed below every user, which sank every cold item
        # below every warm one (NDCG@10 0 on the cold-item protocol). With no cold item the
        # draws are the same as over all items.
        self._neg_pool = np.flatnonzero(self.warm_).astype(np.int64)
        self._sampler = negative_sampler(self, dataset, rng, self._neg_pool)
        coo = m.tocoo()
        self._pairs = np.stack([coo.row, coo.col], axis=1).astype(np.int64)

    def _module_kwargs(self) -> dict[str, Any]:
        return {}

    def build_module(self) -> nn.Module:
        c = self.config
        return _FusedMFModule(
            self.n_users,
            self.n_items,
            c.embedding_dim,
            self.modalities_,
            c.fusion,
            c.id_dropout,
            self.warm_,
            **self._module_kwargs(),
        )

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {f"mod.{k}": v for k, v in self.modalities_.items()} | {"warm": self.warm_}

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.modalities_ = {k: state[f"mod.{k}"] for k in self.config.modalities}
        self.warm_ = state["warm"]

    def _init_std(self) -> float:
        return 0.0

    # ------------------------------------------------------------- training
    def _start_epoch(self) -> None:
        self._epoch += 1
        self.module_.weights = self.config.weights_at(self._epoch)

    def _extra_batch(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {}

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        self._start_epoch()
        advance_epoch(self, self._sampler)
        pairs = self._pairs[rng.permutation(len(self._pairs))]
        bs = self.config.batch_size
        for s in range(0, len(pairs), bs):
            b = pairs[s : s + bs]
            neg = self._neg_pool[self._sampler.sample(b[:, 0], 1, rng)[:, 0]]
            arrays = {"user": b[:, 0], "pos": b[:, 1], "neg": neg, **self._extra_batch(len(b), rng)}
            yield {
                k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device_)
                for k, v in arrays.items()
            } | {"n_samples": len(b)}

    # -------------------------------------------------------------- scoring
    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        return self.module_.score(users, items)

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        self.module_.eval()
        return self.module_.item_vectors().float().cpu().numpy()

    @torch.no_grad()
    def user_vectors(self) -> np.ndarray:
        """User embeddings: ``score = user_vectors() @ item_vectors().T`` (mm_mf, cke)."""
        self.module_.eval()
        return self.module_.user.weight.detach().float().cpu().numpy()


class CKEConfig(MMMFConfig):
    """CKE: multimodal BPR-MF + KG entity embedding trained jointly with TransR."""

    LOSS_TERMS: ClassVar[tuple[str, ...]] = ("rec", "kg", "reg")
    DEFAULT_WEIGHTS: ClassVar[dict[str, float]] = {"rec": 1.0, "kg": 1.0, "reg": 2e-2}

    fusion: FusionKind = "add"
    """Fusion module kind (fusionrec.nn.fusion.ModalityFusion) for the text/visual modalities."""
    rel_dim: int = Field(64, ge=1)
    """TransR relation-space dimension."""
    kg_loss: Literal["margin", "softplus"] = "softplus"
    """TransR loss over (true, corrupted) triples: softplus (CKE/RecBole) or margin ranking."""
    margin: float = Field(1.0, gt=0)
    """Margin of the 'margin' KG loss."""
    kg_batch_size: int | None = Field(None, ge=1)
    """KG triples sampled per recommendation batch (default: ``batch_size``)."""


@register("cke")
class CKE(MMMF):
    """CKE: item = ID + KG entity (TransR, trained jointly) [+ fused text/visual]; BPR + λ_kg·TransR."""

    Config: ClassVar[type[CKEConfig]] = CKEConfig
    capabilities = Capabilities(needs_kg=True, cold_start_items=True)

    @classmethod
    def configured_capabilities(cls, config: MMMFConfig) -> Capabilities:
        """Cold items through their KG neighbours' ID vectors, with or without modalities."""
        return cls.capabilities

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        super()._prepare(dataset, rng)
        kg = dataset.kg
        self.item_entity_ = np.asarray(kg.item_entity, dtype=np.int64).copy()
        self.kg_sizes_ = np.array([len(kg.entities), len(kg.relations)], dtype=np.int64)
        self._triples = kg_triples(kg)
        rows, nbrs, wts = warm_kg_neighbours(kg, self.warm_.astype(bool))
        self.cold_ = (rows, nbrs, wts, 1.0) if len(rows) else None

    def _module_kwargs(self) -> dict[str, Any]:
        c = self.config
        return {
            "item_entity": self.item_entity_,
            "n_entities": int(self.kg_sizes_[0]),
            "n_relations": max(int(self.kg_sizes_[1]), 1),
            "rel_dim": c.rel_dim,
            "kg_loss": c.kg_loss,
            "margin": c.margin,
            "cold": getattr(self, "cold_", None),
        }

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        super()._fit(dataset, valid, seed)
        if self.cold_ is not None:
            w = choose_cold_weight(self, self.module_.set_cold_weight, dataset, valid)
            self.module_.set_cold_weight(w)
            self.cold_ = (*self.cold_[:3], w)

    def _extra_batch(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if len(self._triples) == 0 or "kg" not in self.module_.weights:
            return {}
        m = self.config.kg_batch_size or n
        b = self._triples[rng.integers(0, len(self._triples), size=m)]
        hn, tn = corrupt_triples(b[:, 0], b[:, 2], int(self.kg_sizes_[0]), rng)
        return {"h": b[:, 0], "r": b[:, 1], "t": b[:, 2], "h_neg": hn, "t_neg": tn}

    def _extra_state(self) -> dict[str, np.ndarray]:
        cold = {}
        if self.cold_ is not None:
            rows, nbrs, wts, w = self.cold_
            cold = {
                "cold_rows": rows,
                "cold_nbrs": nbrs,
                "cold_wts": wts,
                "cold_weight": np.array([w], np.float32),
            }
        return super()._extra_state() | {
            "item_entity": self.item_entity_,
            "kg_sizes": self.kg_sizes_,
            **cold,
        }

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        super()._load_extra_state(state)
        self.item_entity_ = state["item_entity"]
        self.kg_sizes_ = state["kg_sizes"]
        # folders saved before the KG read-out of cold items have none (cold ID part = 0)
        self.cold_ = (
            (state["cold_rows"], state["cold_nbrs"], state["cold_wts"], float(state["cold_weight"][0]))
            if "cold_rows" in state
            else None
        )
