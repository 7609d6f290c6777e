"""Knowledge-graph embeddings (TransE, TransR) trained alone, link-prediction evaluation,
and the joint-objective configuration shared by the KG / multimodal recommenders.

Joint objective: a model's ``module.loss(batch)`` returns a dict of named, already weighted
losses, e.g. ``{"rec": L_rec, "kg": λ_kg·L_kg, "reg": λ·‖θ‖²}``; the shared Trainer sums and
logs each as ``loss_<name>``. Weights live in the config (``loss_weights``) and may follow a
per-epoch schedule (``loss_schedules``, e.g. a linear warm-up of λ_kg); the model applies the
epoch's weights when its ``batches()`` starts a new epoch.

Standalone KG embedding::

    emb = train_kge(ds.kg, "transe", embedding_dim=64, epochs=50, seed=0)
    metrics = link_prediction(emb, test_triples)      # {"mrr": ..., "hits@1": ..., "hits@10": ...}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fusionrec.data.dataset import KnowledgeGraph
from fusionrec.errors import ConfigError
from fusionrec.nn.kg import TransEModule, TransRModule, corrupt_triples
from fusionrec.training.config import TrainConfig
from fusionrec.training.curriculum import CurriculumSettings

__all__ = [
    "LossSchedule",
    "JointConfig",
    "KGEConfig",
    "KGEmbeddings",
    "train_kge",
    "link_prediction",
    "split_triples",
    "kg_triples",
]


class LossSchedule(BaseModel):
    """Per-epoch multiplier of one loss weight: ``start`` at epoch 1, rising linearly to 1 at
    epoch ``warmup_epochs + 1`` (``kind="linear"``), or 0 until then and 1 after (``"step"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    kind: Literal["linear", "step"] = "linear"
    """'linear' warm-up from ``start`` to 1, or 'step' (off for ``warmup_epochs``, then on)."""
    start: float = Field(0.0, ge=0)
    """Multiplier at the first epoch (linear)."""
    warmup_epochs: int = Field(5, ge=1)
    """Epochs until the full weight is reached."""

    def factor(self, epoch: int) -> float:
        """Multiplier for 1-based ``epoch``."""
        e = max(epoch - 1, 0)
        if self.kind == "step":
            return 0.0 if e < self.warmup_epochs else 1.0
        if e >= self.warmup_epochs:
            return 1.0
        return self.start + (1.0 - self.start) * e / self.warmup_epochs


class JointConfig(TrainConfig, CurriculumSettings):
    """Training settings plus the weights of each named loss term of a joint objective."""

    LOSS_TERMS: ClassVar[tuple[str, ...]] = ("rec", "reg")
    DEFAULT_WEIGHTS: ClassVar[dict[str, float]] = {"rec": 1.0, "reg": 1e-5}

    loss_weights: dict[str, float] = Field(default_factory=dict)
    """λ per loss term (merged over the model's defaults); 0 switches a term off."""
    loss_schedules: dict[str, LossSchedule] = Field(default_factory=dict)
    """Optional per-epoch schedule per loss term, e.g. {"kg": {"warmup_epochs": 5}}."""

    @model_validator(mode="after")
    def _known_terms(self) -> JointConfig:
        for what, d in (
            ("loss_weights", self.loss_weights),
            ("loss_schedules", self.loss_schedules),
        ):
            bad = sorted(set(d) - set(self.LOSS_TERMS))
            if bad:
                raise ValueError(
                    f"{what}: unknown loss term(s) {bad}; this model has {list(self.LOSS_TERMS)}"
                )
        if any(w < 0 for w in self.loss_weights.values()):
            raise ValueError("loss_weights must be >= 0")
        return self

    def weights(self) -> dict[str, float]:
        """Configured weights merged over the defaults."""
        return {**self.DEFAULT_WEIGHTS, **self.loss_weights}

    def weights_at(self, epoch: int) -> dict[str, float]:
        """Weights of the active terms (weight > 0) at 1-based ``epoch`` after schedules."""
        out = {}
        for name, w in self.weights().items():
            if w > 0:
                s = self.loss_schedules.get(name)
                out[name] = w * (s.factor(epoch) if s is not None else 1.0)
        return out


def kg_triples(kg: KnowledgeGraph) -> np.ndarray:
    """(n, 3) int64 array of (head, relation, tail) entity/relation indices."""
    return np.stack([kg.head, kg.relation, kg.tail], axis=1).astype(np.int64)


def split_triples(
    kg: KnowledgeGraph, test_ratio: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, test) split of the triples; test triples whose head or tail never occurs
    in the train part are moved back to train (their embeddings could not be learned)."""
    if not 0 < test_ratio < 1:
        raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio}")
    t = kg_triples(kg)
    perm = np.random.default_rng(seed).permutation(len(t))
    n_test = int(round(len(t) * test_ratio))
    test, train = t[perm[:n_test]], t[perm[n_test:]]
    seen = np.zeros(len(kg.entities), bool)
    seen[train[:, 0]] = True
    seen[train[:, 2]] = True
    ok = seen[test[:, 0]] & seen[test[:, 2]]
    return np.concatenate([train, test[~ok]]), test[ok]


class KGEConfig(TrainConfig):
    """Standalone KG-embedding training (the shared Trainer runs the loop)."""

    _aliases: ClassVar[dict[str, str]] = {"dim": "embedding_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    method: Literal["transe", "transr"] = "transe"
    """Translational model."""
    embedding_dim: int = Field(64, ge=1)
    """Entity dimension (was ``dim``)."""
    rel_dim: int | None = Field(None, ge=1)
    """TransR relation-space dimension (default: ``embedding_dim``)."""
    margin: float = Field(1.0, gt=0)
    """Margin of the ranking loss."""
    kg_loss: Literal["margin", "softplus"] = "margin"
    """Margin ranking loss, or its smooth softplus form."""
    patience: int = Field(0, ge=0)
    """No early stopping for standalone KG training."""


@dataclass
class KGEmbeddings:
    """Trained KG embeddings: L2-normalised entity vectors, relation vectors, TransR projections."""

    method: str
    entity: np.ndarray
    relation: np.ndarray
    proj: np.ndarray | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    module: torch.nn.Module | None = field(default=None, repr=False)

    def tail_energies(self, h: np.ndarray, r: np.ndarray) -> np.ndarray:
        """(len(h), n_entities) energies of every candidate tail (lower = more plausible)."""
        with torch.no_grad():
            return self.module.tail_energies(torch.as_tensor(h), torch.as_tensor(r)).numpy()

    def head_energies(self, r: np.ndarray, t: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.module.head_energies(torch.as_tensor(r), torch.as_tensor(t)).numpy()


def build_kge_module(cfg: KGEConfig, n_entities: int, n_relations: int) -> torch.nn.Module:
    if cfg.method == "transe":
        return TransEModule(n_entities, n_relations, cfg.embedding_dim, cfg.margin, cfg.kg_loss)
    return TransRModule(n_entities, n_relations, cfg.embedding_dim, cfg.rel_dim, cfg.margin, cfg.kg_loss)


class _KGETrainable:
    """Adapter handing a KG-embedding module to the shared Trainer (no validation set)."""

    name = "kge"

    def __init__(
        self, cfg: KGEConfig, triples: np.ndarray, n_entities: int, module: torch.nn.Module
    ) -> None:
        self.config = cfg
        self.triples = triples
        self.n_entities = n_entities
        self.module_ = module

    def batches(self, _data: Any, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        t = self.triples[rng.permutation(len(self.triples))]
        for s in range(0, len(t), self.config.batch_size):
            b = t[s : s + self.config.batch_size]
            hn, tn = corrupt_triples(b[:, 0], b[:, 2], self.n_entities, rng)
            yield {
                "h": torch.from_numpy(b[:, 0].copy()),
                "r": torch.from_numpy(b[:, 1].copy()),
                "t": torch.from_numpy(b[:, 2].copy()),
                "h_neg": torch.from_numpy(hn),
                "t_neg": torch.from_numpy(tn),
            }

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError("KG embeddings are not a recommender")


def train_kge(
    kg: KnowledgeGraph | np.ndarray,
    method: Literal["transe", "transr"] = "transe",
    embedding_dim: int = 64,
    epochs: int = 50,
    seed: int = 0,
    *,
    n_entities: int | None = None,
    n_relations: int | None = None,
    **params: Any,
) -> KGEmbeddings:
    """Train TransE/TransR embeddings on a KnowledgeGraph (or an (n, 3) triple array with
    ``n_entities``/``n_relations``) with the shared Trainer. ``params`` are further
    :class:`KGEConfig` fields (lr, batch_size, margin, kg_loss, rel_dim, ...)."""
    try:
        cfg = KGEConfig(
            method=method,
            epochs=epochs,
            **{"lr": 0.01, "embedding_dim": embedding_dim, **KGEConfig.normalise_params(params)},
        )
    except Exception as e:  # pydantic ValidationError -> user-facing error
        raise ConfigError(f"invalid KG embedding parameters: {e}") from None
    if isinstance(kg, KnowledgeGraph):
        triples = kg_triples(kg)
        n_entities = len(kg.entities) if n_entities is None else n_entities
        n_relations = len(kg.relations) if n_relations is None else n_relations
    else:
        triples = np.asarray(kg, dtype=np.int64)
        if triples.ndim != 2 or triples.shape[1] != 3:
            raise ConfigError(f"triples must be an (n, 3) array, got shape {triples.shape}")
        if n_entities is None or n_relations is None:
            n_entities = int(max(triples[:, 0].max(), triples[:, 2].max())) + 1
            n_relations = int(triples[:, 1].max()) + 1
    if len(triples) == 0:
        raise ConfigError("the knowledge graph has no triples to train on")
    from fusionrec.models.torch_base import init_parameters
    from fusionrec.training.trainer import Trainer

    gen = torch.Generator().manual_seed(seed)
    module = build_kge_module(cfg, n_entities, n_relations)
    init_parameters(module, gen)
    if isinstance(module, TransRModule):
        with torch.no_grad():  # start every projection at the identity (TransE-like)
            module.proj.copy_(
                torch.eye(cfg.embedding_dim, module.relation.embedding_dim).expand_as(module.proj)
            )
    trainable = _KGETrainable(cfg, triples, n_entities, module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hist = Trainer(cfg).fit(trainable, None, None, seed)
    module.eval()
    with torch.no_grad():
        ent = module.entity_vectors().numpy().copy()
        rel = module.relation.weight.numpy().copy()
        proj = module.proj.detach().numpy().copy() if isinstance(module, TransRModule) else None
    return KGEmbeddings(method, ent, rel, proj, list(hist.records), module)


def link_prediction(
    emb: KGEmbeddings,
    test: np.ndarray,
    known: Iterable[np.ndarray] = (),
    ks: tuple[int, ...] = (1, 3, 10),
    batch_size: int = 16,
) -> dict[str, float]:
    """Filtered tail prediction on ``test`` triples: MRR and Hits@k.

    The true tail is ranked against all entities; other true tails of the same (h, r) found in
    ``test`` or ``known`` (e.g. the training triples) are filtered out. Ties count pessimistically
    half (rank = 1 + #better + #equal/2).
    """
    test = np.asarray(test, dtype=np.int64)
    if len(test) == 0:
        raise ValueError("no test triples")
    allt = np.concatenate([test, *[np.asarray(k, dtype=np.int64) for k in known]])
    true_tails: dict[tuple[int, int], list[int]] = {}
    for h, r, t in allt.tolist():
        true_tails.setdefault((h, r), []).append(t)
    ranks = np.empty(len(test), dtype=np.float64)
    for s in range(0, len(test), batch_size):
        b = test[s : s + batch_size]
        e = emb.tail_energies(b[:, 0], b[:, 1]).astype(np.float64)
        for j, (h, r, t) in enumerate(b.tolist()):
            target = e[j, t]
            others = np.asarray(true_tails[(h, r)])
            e[j, others] = np.inf
            e[j, t] = target
            better = np.sum(e[j] < target)
            equal = np.sum(e[j] == target) - 1
            ranks[s + j] = 1 + better + equal / 2
    out = {"mrr": float(np.mean(1.0 / ranks))}
    for k in ks:
        out[f"hits@{k}"] = float(np.mean(ranks <= k))
    return out
