"""``lm_ease``: EASE with the items' pretrained text embeddings as side information, closed form.

Warm part (collective EASE, after Jeunen et al. 2020, "Closed-form models for collaborative
filtering with side-information"): the text features are stacked under the user-item matrix as
extra "users", so the item-item Gram matrix becomes

    G = XᵀX + α·F·Fᵀ + λI,      α = text_weight · (mean item popularity in X),

with F the items' text embeddings, centred over the catalogue (removes the encoder's common
direction, so unrelated texts are near-orthogonal) and L2-normalised. B = I - P·diag(1/diag(P)),
P = G⁻¹, as in EASE; a user's score is x_u·B. Two items that read alike now share weight even
when few users saw both. ``text_weight`` = 0 is plain EASE.

Cold part: an item with no training interactions has an all-zero column in X, and the
regression above would learn "nobody wants it". Its column of B is instead the softmax
(temperature ``cold_temperature``) weighted mean of the columns of its ``cold_neighbours``
textually nearest warm items, so it is scored like the warm items it reads like, on the same
scale, times ``cold_weight``. Whether a never-interacted item is new (and as good as its
neighbours) or simply unpopular is the data's question, not the model's: with
``cold_weight=None`` (default) and a validation set passed to ``fit``, it is chosen on that
validation set (NDCG@10, training items masked) from ``COLD_WEIGHT_GRID``; without one it is 1.
Items without text (NaN rows in a given embedding matrix) get no text part and, when cold, a
zero column.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.encoders.text import DEFAULT_TEXT_MODEL
from fusionrec.models.base import Capabilities, ModelConfig
from fusionrec.models.classic.ease import EASE, ease_closed_form
from fusionrec.models.registry import register
from fusionrec.models.text.toolkit import (
    COLD_WEIGHT_GRID,
    borrow_columns,
    choose_cold_weight,
    text_features,
    warm_text_neighbours,
)

__all__ = ["LMEASE", "LMEASEConfig", "text_features", "COLD_WEIGHT_GRID"]



class LMEASEConfig(ModelConfig):
    """Settings of lm_ease (defaults chosen on the ml-100k RS 8:1:1 validation split, seed 2020)."""

    _aliases: ClassVar[dict[str, str]] = {"cold_neighbors": "cold_neighbours"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    reg_weight: float = Field(500.0, gt=0)
    """L2 regularisation λ added to the Gram matrix diagonal (as in EASE)."""
    text_weight: float = Field(1.0, ge=0)
    """Weight α of the text Gram term, in units of the mean item popularity (0 = plain EASE)."""
    cold_neighbours: int = Field(1, ge=1)
    """Warm items whose B columns a cold item's column is averaged from (by text similarity;
    was ``cold_neighbors``)."""
    cold_temperature: float = Field(0.05, gt=0)
    """Softmax temperature over the cold item's cosine similarities to those neighbours."""
    cold_weight: float | None = Field(None, ge=0)
    """Scale of the cold items' text-borrowed columns; None = chosen on ``valid`` (else 1)."""
    text_model: str = DEFAULT_TEXT_MODEL
    """Text encoder: the bundled all-MiniLM-L6-v2, a sentence-transformers/HF name, or a local folder."""
    text_template: str | None = None
    """Item text template (see fusionrec.encoders.templates); None = the default template."""
    text_embedding: str = "text"
    """Use this precomputed ``dataset.item_embeddings`` matrix when present (else encode)."""
    encode_batch_size: int = Field(64, ge=1)
    """Texts per encoder pass when encoding items."""
    max_items: int = Field(60_000, ge=1)
    """Refuse to fit above this many items (the dense n_items² solve would not fit in memory)."""
    dtype: Literal["float32", "float64"] = "float32"
    """Precision of the dense solve (float64 needs twice the memory; B is stored as float32)."""




@register("lm_ease")
class LMEASE(EASE):
    """EASE with item text embeddings as side information (closed form); cold items via text."""

    Config = LMEASEConfig
    capabilities = Capabilities(needs_text=True, cold_start_items=True, cold_start_users=True)
    config: LMEASEConfig

    def _text_matrix(self, dataset: Dataset) -> np.ndarray:
        c = self.config
        if c.text_embedding in dataset.item_embeddings:
            return np.asarray(dataset.item_embeddings[c.text_embedding], dtype=np.float32)
        from fusionrec.encoders.text import encode_items

        return encode_items(dataset, c.text_model, c.text_template, batch_size=c.encode_batch_size)

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        c = self.config
        x = dataset.matrix("csr")
        pop = np.asarray(x.multiply(x).sum(0), dtype=np.float64).ravel()  # diag(XᵀX)
        text = self._text_matrix(dataset)
        f, has_text = text_features(text)
        alpha = 0.0
        if c.text_weight > 0 and has_text.any():
            alpha = c.text_weight * max(float(pop.mean()), 1e-12)
        b = ease_closed_form(
            dataset,
            c.reg_weight,
            model="lm_ease",
            max_items=c.max_items,
            dtype=c.dtype,
            device=self.fit_options_.device,
            side=f if alpha > 0 else None,
            side_weight=alpha,
        )
        warm = pop > 0
        b[:, ~warm] = 0.0
        cold, nbrs, wts = warm_text_neighbours(text, warm, c.cold_neighbours, c.cold_temperature)
        borrow_columns(b, cold, nbrs, wts)
        b[cold, cold] = 0.0
        self.B_ = b.astype(np.float32, copy=False)
        self.cold_weight_ = 1.0
        if len(cold):
            full = self.B_[:, cold].copy()

            def set_weight(w: float) -> None:
                self.B_[:, cold] = w * full

            self.cold_weight_ = choose_cold_weight(self, set_weight, c.cold_weight, dataset, valid)
            set_weight(self.cold_weight_)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {**super()._get_state(), "cold_weight": np.array([self.cold_weight_], np.float64)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        self.cold_weight_ = float(state["cold_weight"][0])
