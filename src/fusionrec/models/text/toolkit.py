"""The text toolkit every text model shares: the encoder settings and text bank
(``LMTextConfig``, ``TextModelMixin``), text features and neighbours, text offsets of ID vectors,
the text score term, and the cold-item read-out from warm text neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from fusionrec.data.dataset import Dataset
from fusionrec.encoders.text import DEFAULT_TEXT_MODEL
from fusionrec.errors import ConfigError
from fusionrec.training.config import TrainConfig

#: Candidate cold-item weights tried on the validation set (ties keep the earlier value).
COLD_WEIGHT_GRID: tuple[float, ...] = (1.0, 0.5, 0.25, 0.0, 1.5, 2.0)


def text_features(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred, L2-normalised text features and a mask of the items that have text.

    Rows with NaN (item without text) or all zeros are missing: they come out as zeros."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ConfigError(f"text embedding matrix must be 2-d, got shape {m.shape}")
    has = ~np.isnan(m).any(1)
    m = np.where(has[:, None], m, 0.0)
    has &= np.abs(m).sum(1) > 0
    if has.any():
        m = m - m[has].mean(0)
    m[~has] = 0.0
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    f = np.divide(m, norms, out=np.zeros_like(m), where=norms > 1e-12)
    return f, has


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


def warm_text_neighbours(
    text: np.ndarray, warm: np.ndarray, k: int, temperature: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cold rows, (n_cold, k) neighbours, (n_cold, k) weights): for every item with text and
    without training interactions (``warm`` False), its ``k`` textually nearest warm items with
    text (cosine of centred, normalised embeddings) and softmax weights over those cosines at
    ``temperature`` (each row sums to 1). With fewer than k such warm items the missing slots
    point at item 0 with weight 0; with none, no item gets a row."""
    f, has = text_features(text)
    warm = np.asarray(warm, dtype=bool)
    cold = np.flatnonzero(~warm & has)
    donors = np.flatnonzero(warm & has)
    k_eff = min(k, len(donors))
    nbrs = np.zeros((0, k), np.int64)
    wts = np.zeros((0, k), np.float32)
    if k_eff < 1 or len(cold) == 0:
        return np.zeros(0, np.int64), nbrs, wts
    sim = f[cold] @ f[donors].T
    top = np.argpartition(-sim, k_eff - 1, axis=1)[:, :k_eff]
    s = np.take_along_axis(sim, top, axis=1)
    z = np.exp((s - s.max(1, keepdims=True)) / temperature)
    nbrs = np.zeros((len(cold), k), np.int64)
    wts = np.zeros((len(cold), k), np.float32)
    nbrs[:, :k_eff] = donors[top]
    wts[:, :k_eff] = z / z.sum(1, keepdims=True)
    return cold.astype(np.int64), nbrs, wts


def text_id_offsets(
    text: np.ndarray, interactions: sp.spmatrix, dim: int, std: float
) -> np.ndarray:
    """(n_users + n_items, dim) layer-0 offsets, users first: each item's centred text projected
    on the top ``dim`` principal directions of the items' texts (zero without text), each user's
    the mean of their training items' offsets; items and users each rescaled to ``std`` per
    coordinate (the missing directions of a catalogue with fewer texts than ``dim`` stay 0)."""
    f, has = text_features(text)
    items = np.zeros((f.shape[0], dim))
    if has.sum() > 1:
        x = f[has] - f[has].mean(0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        k = min(dim, vt.shape[0])
        items[has, :k] = x @ vt[:k].T
    r = sp.csr_matrix(interactions, dtype=np.float64, copy=True)
    r.data[:] = 1.0
    n = np.asarray(r.sum(1)).ravel()
    users = (r @ items) / np.maximum(n, 1)[:, None]

    def rescale(m: np.ndarray, rows: np.ndarray) -> np.ndarray:
        s = m[rows].std() if rows.any() else 0.0
        return m * (std / s) if s > 1e-12 else m

    out = np.concatenate([rescale(users, n > 0), rescale(items, has)])
    return out.astype(np.float32)


def user_item_text(text: np.ndarray, interactions: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """(users' text profiles, items' text vectors): items' centred, L2-normalised text (zero
    without text) and each user's mean of it over their training items (zero without any)."""
    f, _ = text_features(text)
    r = sp.csr_matrix(interactions, dtype=np.float64, copy=True)
    r.data[:] = 1.0
    n = np.asarray(r.sum(1)).ravel()
    users = (r @ f) / np.maximum(n, 1)[:, None]
    return users.astype(np.float32), f.astype(np.float32)


def text_stats(init: np.ndarray | None, center: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mean text vector, has-text mask) of an item text matrix; rows with NaN or all zeros have
    no text. None when there is no matrix (a loaded model: the buffers come from its state)."""
    if init is None:
        return None
    m = np.asarray(init, dtype=np.float32)
    has = ~np.isnan(m).any(1)
    m = np.where(has[:, None], m, 0.0)
    has &= np.abs(m).sum(1) > 0
    mean = m[has].mean(0) if center and has.any() else np.zeros(m.shape[1], np.float32)
    return torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(has)


def register_text_terms(
    module: nn.Module,
    c: Any,
    enabled: bool,
    n_users: int,
    n_items: int,
    dim: int,
    text_dim: int,
    id_offset: torch.Tensor | None,
    score_text: tuple[torch.Tensor, torch.Tensor] | None,
) -> None:
    """Give ``module`` the two optional text terms of ``lm_mf`` and ``lm_lightgcn`` (config
    fields ``id_init``, ``text_score_weight``, ``text_score_learned``):

    - ``has_offset`` and an ``id_offset`` buffer (n_users + n_items, dim): fixed text offsets
      added to the ID vectors (id_init="text"; zeros until a loaded state fills them);
    - ``text_score``, ``beta`` (a parameter when learned, else a buffer) and the ``user_text`` /
      ``item_text`` profile buffers of the β·⟨user text, item text⟩ score term.

    ``enabled`` False (no text at all) switches both off."""
    module.has_offset = enabled and c.id_init == "text"
    if module.has_offset:
        off = id_offset if id_offset is not None else torch.zeros(n_users + n_items, dim)
        module.register_buffer("id_offset", off.float())
    module.text_score = enabled and (c.text_score_weight > 0 or c.text_score_learned)
    if c.text_score_learned:
        module.beta = nn.Parameter(torch.tensor(c.text_score_weight))
    else:
        module.register_buffer("beta", torch.tensor(c.text_score_weight), persistent=False)
    if module.text_score:
        ut, it = score_text or (torch.zeros(n_users, text_dim), torch.zeros(n_items, text_dim))
        module.register_buffer("user_text", ut.float())
        module.register_buffer("item_text", it.float())


def text_score_term(
    module: nn.Module, users: torch.Tensor, items: torch.Tensor | None
) -> torch.Tensor:
    """β·⟨user text profile, item text⟩ for ``users`` × ``items`` (all items when None)."""
    it = module.item_text if items is None else module.item_text[items]
    return module.beta * (module.user_text[users] @ it.T)


class LMTextConfig(TrainConfig):
    """Text-encoder settings shared by the LM-enhanced models."""

    text_model: str = DEFAULT_TEXT_MODEL
    """Text encoder: the bundled all-MiniLM-L6-v2, a sentence-transformers/HF name, or a local folder."""
    text_template: str | None = None
    """Item text template (see fusionrec.encoders.templates); None = the default template."""
    text_embedding: str = "text"
    """Use this precomputed ``dataset.item_embeddings`` matrix when present (else encode)."""
    encode_batch_size: int = Field(64, ge=1)
    """Texts per encoder pass when encoding items."""
    encoder_finetune: Literal["frozen", "top_n", "lora", "full"] = "frozen"
    """Language-model training: frozen (cached embeddings), top_n layers unfrozen, LoRA adapters, or full (all weights)."""
    encoder_top_n: int = Field(1, ge=1)
    """Transformer layers unfrozen from the top when encoder_finetune='top_n'."""
    encoder_lr: float = Field(2e-5, gt=0)
    """Learning rate of the language model's trainable weights (separate from ``lr``)."""
    lora_r: int = Field(8, ge=1)
    """LoRA rank when encoder_finetune='lora'."""
    lora_alpha: int = Field(16, ge=1)
    """LoRA scaling alpha when encoder_finetune='lora'."""
    live_items: int = Field(64, ge=1)
    """When fine-tuning: most distinct items re-embedded with gradients per training step."""


class TextModelMixin:
    """Text plumbing of the LM models: item text matrix, text bank, query encoding, persistence
    of the fine-tuned encoder weights."""

    config: LMTextConfig

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        self._epochs_seen = 0
        try:
            super()._fit(dataset, valid, seed)  # type: ignore[misc]
        finally:
            self.text_init_ = None  # the raw text matrix is only needed to build the module

    def _start_epoch_text(self) -> None:
        """Call first in ``batches``: from the second epoch on, re-encode the item texts when
        the encoder is being fine-tuned (its weights moved during the last epoch)."""
        bank = getattr(self.module_, "bank", None)  # type: ignore[attr-defined]
        if bank is not None and bank.finetuning and getattr(self, "_epochs_seen", 0) > 0:
            bank.refresh(self.config.encode_batch_size)
        self._epochs_seen = getattr(self, "_epochs_seen", 0) + 1

    def _prepare_text(self, dataset: Dataset) -> None:
        from fusionrec.encoders.templates import render_item_texts
        from fusionrec.encoders.text import encode_items

        c = self.config
        need_texts = c.encoder_finetune != "frozen"
        self.item_texts_: list[str] | None = (
            render_item_texts(dataset, c.text_template) if need_texts else None
        )
        if c.text_embedding in dataset.item_embeddings and not need_texts:
            mat = np.asarray(dataset.item_embeddings[c.text_embedding], dtype=np.float32)
        else:
            mat = encode_items(
                dataset, c.text_model, c.text_template, batch_size=c.encode_batch_size
            )
        self.text_init_ = mat
        self.text_dim_ = int(mat.shape[1])

    def _text_bank(self):
        from fusionrec.encoders.finetune import build_text_bank

        c = self.config
        init = getattr(self, "text_init_", None)
        if init is None:
            init = np.zeros((self.n_items, self.text_dim_), np.float32)
        return build_text_bank(
            init,
            getattr(self, "item_texts_", None),
            c.text_model,
            c.encoder_finetune,
            str(self.device_),
            top_n=c.encoder_top_n,
            lora_r=c.lora_r,
            lora_alpha=c.lora_alpha,
            live_items=c.live_items,
        )

    def _text_extra_state(self) -> dict[str, np.ndarray]:
        out = {"text_dim": np.array([self.text_dim_], dtype=np.int64)}
        for k, v in self.module_.bank.trainable_state().items():
            out[f"encoder.{k}"] = v
        return out

    def _text_load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.text_dim_ = int(state["text_dim"][0])
        self.text_init_ = None
        self.item_texts_ = None
        self._pending_encoder_state = {
            k[8:]: v for k, v in state.items() if k.startswith("encoder.")
        }

    def _text_after_load(self) -> None:
        pending = getattr(self, "_pending_encoder_state", None)
        if pending:
            self.module_.bank.load_trainable_state(pending)
        self._pending_encoder_state = None

    # ------------------------------------------------------------------ text search
    def item_text_vectors(self) -> np.ndarray:
        """The items' text embeddings (n_items, text_dim) as the model saw them."""
        self._require_fitted()
        return self.module_.bank.memory.detach().float().cpu().numpy()

    def encode_query(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed free text with the model's encoder (the fine-tuned one when fine-tuned)."""
        from fusionrec.encoders.text import encode_queries

        self._require_fitted()
        texts = [texts] if isinstance(texts, str) else list(texts)
        enc = self.module_.bank.encoder
        if enc is not None:
            return enc.encode(texts)
        return encode_queries(texts, self.config.text_model)

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """Items ranked by cosine similarity of their text embedding to ``query``."""
        q = self.encode_query(query)[0]
        m = self.item_text_vectors()
        sims = (m @ q) / np.maximum(np.linalg.norm(m, axis=1) * np.linalg.norm(q), 1e-12)
        top = np.argsort(-sims, kind="stable")[:k]
        return [(str(self.items_.ids[i]), float(sims[i])) for i in top]


def borrow_columns(b: np.ndarray, rows: np.ndarray, nbrs: np.ndarray, wts: np.ndarray) -> None:
    """In place: column ``rows[c]`` of ``b`` becomes the ``wts[c]``-weighted sum of the columns
    ``nbrs[c]`` (a cold item's column read out from its warm text neighbours, as returned by
    ``warm_text_neighbours``). A sparse (n_cold, n_items) weight matrix keeps memory at
    O(n_items x n_cold) whatever the neighbour count."""
    if len(rows) == 0:
        return
    n_cold, k = nbrs.shape
    w = sp.csr_matrix(
        (wts.ravel().astype(b.dtype), (np.repeat(np.arange(n_cold), k), nbrs.ravel())),
        shape=(n_cold, b.shape[1]),
    )
    b[:, rows] = np.asarray((w @ b.T).T)


def choose_cold_weight(
    model: Any, set_weight: Any, fixed: float | None, train: Dataset, valid: Dataset | None
) -> float:
    """The cold items' read-out weight: ``fixed`` when given; else the ``COLD_WEIGHT_GRID`` value
    with the best validation NDCG@10 (``set_weight(w)`` applies a candidate to ``model``; ties
    keep the earlier value); 1 without a validation set. The caller applies the result."""
    if fixed is not None:
        return float(fixed)
    if valid is None or valid.n_interactions == 0:
        return 1.0
    from fusionrec.evaluation.selection import best_on_validation

    return best_on_validation(model, set_weight, COLD_WEIGHT_GRID, train, valid)
