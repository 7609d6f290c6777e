"""``joint``: one model over interactions X, user features Y, item text Z and the KG W.

The documents' first formula, trained end to end on the shared Trainer::

    L = L_rec(X) + a·L_user(Y) + b·L_text(Z) + c·L_kg(W) + λ·reg

- user vector  u = ID embedding + f_Y(user features)      (``FeatureEncoder``, fields averaged)
- item vector  v = ID embedding + entity(W) + P·text(Z)   (``TextFeatureBank``: frozen cached
  embeddings, or the language model fine-tuned with LoRA / top-N / all weights; ``P`` a linear map)
- ``rec``:  BPR of ⟨u, v_pos⟩ over ⟨u, v_neg⟩ (one uniform warm negative per positive);
- ``user``: the same BPR with the user's *feature* vector alone (Y must rank by itself);
- ``text``: the same BPR with the items' *projected text* alone (Z must rank by itself, which is
  also what trains the language model's adapters towards the task);
- ``kg``:   TransR (softplus) over true vs corrupted triples of W, sharing the entity table
  with the items (as CKE);
- ``reg``:  L2 of the batch's user and item vectors without their entity part;
- ``prior``: for a source in ``fusion`` "prior" mode (out of the warm rows' scores), the pull of
  the ID vectors towards that source's vector (the mean of their Gaussian prior) in place of
  ``reg``'s pull towards 0; a cold item's vector is then its prior mean.

Each term is returned already weighted, so the Trainer logs ``loss_rec``, ``loss_user``,
``loss_text``, ``loss_kg``, ``loss_reg`` and ``loss_prior``. ``sources`` removes a source from
the model altogether (the ablation); a term's weight 0 keeps the source in the score but drops its
auxiliary loss. Items without training interactions have their ID part masked (scored from
text + entity), so the model ranks cold items through Z and W.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import NegativeSampler
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities
from fusionrec.models.kg.kge import JointConfig, kg_triples
from fusionrec.models.negatives import advance_epoch, negative_sampler
from fusionrec.models.registry import register
from fusionrec.models.text.toolkit import LMTextConfig, TextModelMixin, text_stats, user_item_text
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.nn.features import FeatureEncoder, FeatureTables
from fusionrec.nn.kg import corrupt_triples, kg_pair_loss, transr_pair_energies
from fusionrec.nn.losses import bpr_loss

__all__ = ["JointRec", "JointRecConfig", "SOURCES"]

Source = Literal["user", "text", "kg"]
SOURCES: tuple[str, ...] = ("user", "text", "kg")


class JointRecConfig(JointConfig, LMTextConfig):
    """Joint X/Y/Z/W model. Training recipe = ``cke``'s (BPR: xavier init, Adam 5e-3, batches of
    4096, L2 2e-2, early stopping on valid NDCG@10 with patience 10)."""

    LOSS_TERMS: ClassVar[tuple[str, ...]] = ("rec", "user", "text", "kg", "reg", "prior")
    DEFAULT_WEIGHTS: ClassVar[dict[str, float]] = {
        "rec": 1.0,
        "user": 0.1,
        "text": 0.1,
        "kg": 1.0,
        "reg": 2e-2,
        "prior": 2e-2,
    }

    sources: list[Source] = Field(default_factory=lambda: ["user", "text", "kg"])
    """Side sources in the model: any of user (Y), text (Z), kg (W); [] = BPR-MF on IDs."""
    embedding_dim: int = Field(64, ge=1)
    """Width of user and item vectors (and of the KG entity vectors)."""
    rel_dim: int = Field(64, ge=1)
    """TransR relation-space dimension."""
    user_feature_columns: list[str] | None = None
    """User feature columns (None = all of the dataset's)."""
    text_user_profile: bool = False
    """With text: also add to the user vector a learned map of the user's text profile (the mean
    of the centred, normalised text vectors of their training items)."""
    kg_batch_size: int | None = Field(None, ge=1)
    """KG triples per recommendation batch (default: ``batch_size``)."""
    epochs: int = Field(200, ge=1)
    """Maximum number of passes over the training interactions."""
    batch_size: int = Field(4096, ge=1)
    """Interactions per optimisation step."""
    lr: float = Field(5e-3, gt=0)
    """Learning rate of the ID embeddings (the language model's trainable weights use ``encoder_lr``)."""
    fusion: dict[Source, Literal["add", "prior"]] = Field(default_factory=dict)
    """How each side source enters the model (default "add"). "add": its vector is added to the
    user (item) vector. "prior": it stays out of a warm user's (item's) score and is the mean of
    the ID vector's Gaussian prior instead: the ``prior`` term pulls the ID embedding towards it
    (f_Y(user features), P·text or the item's entity), in place of the L2 pull towards 0, so the
    source shapes the ID table (most for sparse rows) without adding its noise to the score; a cold
    item's vector is its prior mean. E.g. {"text": "prior", "user": "prior"}."""
    source_lr: dict[Source, float] = Field(default_factory=dict)
    """Learning rate per side source's own weights (user: the feature encoder; text: the text
    projection; kg: entity, relation and TransR projection tables); a source not named trains
    at ``lr``. E.g. {"text": 1e-3}."""

    @field_validator("source_lr")
    @classmethod
    def _positive_lr(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not x > 0}
        if bad:
            raise ValueError(f"source_lr must be > 0, got {bad}")
        return v


class _JointModule(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        c: JointRecConfig,
        warm: np.ndarray,
        user_tables: FeatureTables | None,
        bank: nn.Module | None,
        text_mean: torch.Tensor | None,
        item_entity: np.ndarray | None,
        kg_sizes: tuple[int, int],
        user_text: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        d = c.embedding_dim
        self.c = c
        self.user = nn.Embedding(n_users, d)
        self.item = nn.Embedding(n_items, d)
        self.register_buffer("warm", torch.as_tensor(np.asarray(warm, dtype=bool)), persistent=False)
        self.user_feats = FeatureEncoder(user_tables, d) if user_tables is not None else None
        self.bank = bank
        if bank is not None:
            self.text_proj = nn.Linear(bank.dim, d, bias=False)
            self.register_buffer("text_mean", text_mean if text_mean is not None else torch.zeros(bank.dim))
        self.has_user_text = bank is not None and user_text is not None
        if self.has_user_text:
            # derived from the training data (saved with the model's extra state, not copied by a
            # warm start: a fine-tuning fit recomputes it from its own interactions)
            self.register_buffer("user_text", torch.as_tensor(user_text, dtype=torch.float32), persistent=False)
            self.user_text_proj = nn.Linear(user_text.shape[1], d, bias=False)
        self.has_kg = item_entity is not None
        if self.has_kg:
            n_ent, n_rel = kg_sizes
            self.entity = nn.Embedding(n_ent + 1, d)  # row n_ent: the default of unlinked items
            self.relation = nn.Embedding(max(n_rel, 1), c.rel_dim)
            self.proj = nn.Parameter(torch.empty(max(n_rel, 1), d, c.rel_dim))
            ie = np.where(item_entity >= 0, item_entity, n_ent)
            self.register_buffer("item_entity", torch.from_numpy(ie.astype(np.int64)), persistent=False)
        # sources in "prior" mode (of those in the model): out of a warm row's score, the mean of
        # its ID vector's prior instead
        present = {"user": self.user_feats is not None, "text": bank is not None, "kg": self.has_kg}
        self.prior = frozenset(k for k, m in c.fusion.items() if m == "prior" and present[k])
        self.weights: dict[str, float] = c.weights_at(1)
        self._cache: torch.Tensor | None = None

    def train(self, mode: bool = True) -> _JointModule:
        self._cache = None
        return super().train(mode)

    # ----------------------------------------------------------------- towers
    def feature_user(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_feats.fields(users).mean(1)

    def user_vecs(self, users: torch.Tensor) -> torch.Tensor:
        u = self.user(users)
        if self.has_user_text:
            u = u + self.user_text_proj(self.user_text[users])
        if self.user_feats is not None and "user" not in self.prior:
            u = u + self.feature_user(users)
        return u

    def text_items(self, items: torch.Tensor) -> torch.Tensor:
        return self.text_proj(self.bank(items) - self.text_mean)

    def item_parts(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(ID part masked for cold items, text part or None, entity part or None)."""
        ids = self.item(items) * self.warm[items].unsqueeze(-1).to(self.item.weight.dtype)
        txt = self.text_items(items) if self.bank is not None else None
        ent = self.entity(self.item_entity[items]) if self.has_kg else None
        return ids, txt, ent

    def combine(
        self, items: torch.Tensor, ids: torch.Tensor, txt: torch.Tensor | None, ent: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(item vectors, their prior mean or None): the ID part plus the "add" sources; the
        "prior" sources make the prior mean, which is a cold item's vector (its ID part is 0)."""
        v, mean = ids, None
        for name, part in (("text", txt), ("kg", ent)):
            if part is None:
                continue
            if name in self.prior:
                mean = part if mean is None else mean + part
            else:
                v = v + part
        if mean is not None:
            v = v + mean * (~self.warm[items]).unsqueeze(-1).to(mean.dtype)
        return v, mean

    def item_vecs(self, items: torch.Tensor | None = None) -> torch.Tensor:
        full = items is None
        if full and not self.training and self._cache is not None:
            return self._cache
        if full:
            items = torch.arange(self.item.num_embeddings, device=self.item.weight.device)
        v, _ = self.combine(items, *self.item_parts(items))
        if full and not self.training:
            self._cache = v
        return v

    def score(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        return self.user_vecs(users) @ self.item_vecs(items).T

    # ------------------------------------------------------------------ loss
    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        w = self.weights
        users, i, j = batch["user"], batch["pos"], batch["neg"]
        n = len(i)
        uid = self.user(users)
        if self.has_user_text:
            uid = uid + self.user_text_proj(self.user_text[users])
        uf = self.feature_user(users) if self.user_feats is not None else None
        u = uid + uf if uf is not None and "user" not in self.prior else uid
        items = torch.cat([i, j])
        ids, txt, ent = self.item_parts(items)
        v, mean = self.combine(items, ids, txt, ent)
        out = {"rec": w.get("rec", 1.0) * bpr_loss((u * v[:n]).sum(-1), (u * v[n:]).sum(-1))}
        if uf is not None and w.get("user", 0) > 0:
            out["user"] = w["user"] * bpr_loss((uf * v[:n]).sum(-1), (uf * v[n:]).sum(-1))
        if txt is not None and w.get("text", 0) > 0:
            # negatives of the text term come from the whole catalogue when some items are cold
            # ("text_neg"): the text tower alone scores cold items, so it must also learn to push
            # an unseen cold item down, or cold items float above every warm one
            tn = self.text_items(batch["text_neg"]) if "text_neg" in batch else txt[n:]
            out["text"] = w["text"] * bpr_loss((u * txt[:n]).sum(-1), (u * tn).sum(-1))
        if self.has_kg and w.get("kg", 0) > 0 and "h" in batch:
            pos, neg = transr_pair_energies(self.entity, batch, self.relation.weight, self.proj)
            out["kg"] = w["kg"] * kg_pair_loss(pos, neg, "softplus", 1.0)
        # the ID-side vectors (entity excluded, as in CKE) are pulled towards 0 ("reg") or, for a
        # row with a "prior" source, towards that source's vector ("prior")
        rv = ids + (txt if txt is not None and "text" not in self.prior else 0)
        u_prior = uf if "user" in self.prior else None
        if w.get("reg", 0) > 0:
            sq = (u.pow(2).sum() if u_prior is None else 0) + (rv.pow(2).sum() if mean is None else 0)
            if torch.is_tensor(sq):
                out["reg"] = w["reg"] * 0.5 * sq / n
        if w.get("prior", 0) > 0 and (u_prior is not None or mean is not None):
            sq = (u - u_prior).pow(2).sum() if u_prior is not None else 0
            sq = sq + ((rv - mean).pow(2).sum() if mean is not None else 0)
            out["prior"] = w["prior"] * 0.5 * sq / n
        return out

    def source_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The trainable weights of each side source in the model."""
        out: dict[str, list[nn.Parameter]] = {}
        if self.user_feats is not None:
            out["user"] = list(self.user_feats.parameters())
        if self.bank is not None:
            out["text"] = list(self.text_proj.parameters())
            if self.has_user_text:
                out["text"] += list(self.user_text_proj.parameters())
        if self.has_kg:
            out["kg"] = [self.entity.weight, self.relation.weight, self.proj]
        return {k: [p for p in ps if p.requires_grad] for k, ps in out.items()}

    def param_groups(self, lr: float) -> list[dict]:
        per = self.source_parameters()
        taken = {id(p) for ps in per.values() for p in ps}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        groups = [{"params": rest, "lr": lr}]
        for name, ps in per.items():
            if ps:
                groups.append({"params": ps, "lr": self.c.source_lr.get(name, lr)})
        if self.bank is not None:
            groups += self.bank.param_groups(self.c.encoder_lr)
        return groups


@register("joint")
class JointRec(TextModelMixin, TorchRecommender):
    """One model over IDs, user features, (fine-tuned) item text and the KG (TransR) under one
    weighted objective; each term logged."""

    Config: ClassVar[type[JointRecConfig]] = JointRecConfig
    capabilities = Capabilities(cold_start_items=True)
    config: JointRecConfig

    def check_dataset(self, dataset: Dataset) -> None:
        if dataset.n_interactions == 0:
            raise ConfigError(f"dataset {dataset.name!r} has no interactions to fit on")
        s = set(self.config.sources)
        if "user" in s and dataset.user_features is None:
            raise ConfigError(
                f"model 'joint': sources include 'user' but dataset {dataset.name!r} has no user features"
            )
        if "kg" in s and dataset.kg is None:
            raise ConfigError(
                f"model 'joint': sources include 'kg' but dataset {dataset.name!r} has no knowledge graph"
            )
        if "text" in s and not dataset.text_fields and self.config.text_embedding not in dataset.item_embeddings:
            raise ConfigError(
                f"model 'joint': sources include 'text' but dataset {dataset.name!r} has no item text fields"
            )

    # ------------------------------------------------------------------ data
    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        s = set(self.config.sources)
        self.warm_ = (dataset.item_popularity() > 0).astype(np.uint8)
        # negatives among warm items only (a cold item drawn as a negative would get its text and
        # entity parts pushed below every user, sinking every cold item), never a training
        # positive of the user, and harder over the epochs under a ``curriculum``
        self._neg_pool = np.flatnonzero(self.warm_).astype(np.int64)
        self._sampler = negative_sampler(self, dataset, rng, self._neg_pool)
        cold = len(self._neg_pool) < dataset.n_items
        self._text_sampler = NegativeSampler(dataset.matrix("csr")) if cold and "text" in s else None
        coo = dataset.matrix("csr").tocoo()
        self._pairs = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
        self._epoch = 0
        self.user_tables_ = (
            FeatureTables.from_dataset(dataset, "user", self.config.user_feature_columns)
            if "user" in s
            else None
        )
        self.user_text_ = None
        if "text" in s:
            self._prepare_text(dataset)
            if self.config.text_user_profile:
                self.user_text_ = user_item_text(self.text_init_, dataset.matrix("csr"))[0]
        if "kg" in s:
            kg = dataset.kg
            self.item_entity_ = np.asarray(kg.item_entity, dtype=np.int64).copy()
            self.kg_sizes_ = np.array([len(kg.entities), len(kg.relations)], dtype=np.int64)
            self._triples = kg_triples(kg)

    def build_module(self) -> nn.Module:
        s = set(self.config.sources)
        bank, mean = None, None
        if "text" in s:
            bank = self._text_bank()
            stats = text_stats(getattr(self, "text_init_", None), True)
            mean = stats[0] if stats is not None else None
        kg = "kg" in s
        return _JointModule(
            self.n_users,
            self.n_items,
            self.config,
            self.warm_,
            self.user_tables_,
            bank,
            mean,
            self.item_entity_ if kg else None,
            (int(self.kg_sizes_[0]), int(self.kg_sizes_[1])) if kg else (0, 0),
            self.user_text_ if "text" in s else None,
        )

    def _init_std(self) -> float:
        return 0.0  # xavier-normal, as bpr / cke

    # -------------------------------------------------------------- training
    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        self._start_epoch_text()
        self._epoch += 1
        self.module_.weights = self.config.weights_at(self._epoch)
        advance_epoch(self, self._sampler)
        pairs = self._pairs[rng.permutation(len(self._pairs))]
        bs = self.config.batch_size
        kg = "kg" in self.config.sources and len(getattr(self, "_triples", ())) > 0
        for s in range(0, len(pairs), bs):
            b = pairs[s : s + bs]
            arrays = {
                "user": b[:, 0],
                "pos": b[:, 1],
                "neg": self._neg_pool[self._sampler.sample(b[:, 0], 1, rng)[:, 0]],
            }
            if self._text_sampler is not None and self.module_.weights.get("text", 0) > 0:
                arrays["text_neg"] = self._text_sampler.sample(b[:, 0], 1, rng)[:, 0]
            if kg and self.module_.weights.get("kg", 0) > 0:
                m = self.config.kg_batch_size or len(b)
                t = self._triples[rng.integers(0, len(self._triples), size=m)]
                hn, tn = corrupt_triples(t[:, 0], t[:, 2], int(self.kg_sizes_[0]), rng)
                arrays |= {"h": t[:, 0], "r": t[:, 1], "t": t[:, 2], "h_neg": hn, "t_neg": tn}
            yield {
                k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device_) for k, v in arrays.items()
            } | {"n_samples": len(b)}

    # --------------------------------------------------------------- scoring
    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        return self.module_.score(users, items)

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        return self.module_.eval().item_vecs().float().cpu().numpy()

    # ----------------------------------------------------------- persistence
    def _warm_start_tables(self) -> dict[str, Any]:
        """The id-indexed tables by name (``init_from``): user and item ID embeddings and the
        items' cached text vectors; every other weight (text projection, feature encoder, KG
        tables) is copied whole. Named, not guessed from shapes: a (dim, n) projection looks
        like an item table whenever n_items equals the embedding width or n_users."""
        from fusionrec.models.warm_start import IdTable

        sd = self.module_.state_dict()
        names = {"user.weight": "user", "item.weight": "item", "bank.memory": "item"}
        return {k: IdTable(kind) for k, kind in names.items() if k in sd}

    def _extra_state(self) -> dict[str, np.ndarray]:
        s = set(self.config.sources)
        out: dict[str, np.ndarray] = {"warm": self.warm_}
        if "user" in s:
            out |= self.user_tables_.to_state("ut.")
        if "text" in s:
            out |= self._text_extra_state()
            if self.user_text_ is not None:
                out["user_text"] = self.user_text_
        if "kg" in s:
            out |= {"item_entity": self.item_entity_, "kg_sizes": self.kg_sizes_}
        return out

    def _load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        s = set(self.config.sources)
        self.warm_ = state["warm"]
        self.user_tables_ = (
            FeatureTables.from_state({k: v for k, v in state.items() if k.startswith("ut.")}, "ut.")
            if "user" in s
            else None
        )
        if "text" in s:
            self._text_load_extra_state(state)
        self.user_text_ = state.get("user_text") if "text" in s else None
        if "kg" in s:
            self.item_entity_ = state["item_entity"]
            self.kg_sizes_ = state["kg_sizes"]

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        if "text" in self.config.sources:
            self._text_after_load()

