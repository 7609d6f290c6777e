"""``kg_ease``: EASE with the knowledge graph as side information, closed form.

Warm part (collective EASE, Jeunen et al. 2020, as ``lm_ease`` does with text): each item's
one-hop KG neighbourhood (``cold_items.kg_item_profiles``: the entities its entity is joined to,
IDF-weighted, rows L2-normalised) is stacked under the user-item matrix as extra "users", so
the item-item Gram matrix becomes

    G = XᵀX + α·K·Kᵀ + λI,      α = kg_weight · (mean item popularity in X),

and B = I - P·diag(1/diag(P)), P = G⁻¹, as in EASE (score = x_u·B). Two items that share a
director or an actor share weight even when few users saw both. ``kg_weight`` = 0 is plain EASE
(the ablation without the KG).

``reg_weight`` and ``kg_weight`` left at None are chosen together on the validation split
(NDCG@10, train items masked) from ``REG_GRID`` x ``KG_GRID``, one closed-form solve per pair;
without a validation split they are ``DEFAULT_REG`` and ``DEFAULT_KG``. ``KG_GRID`` has no 0:
the model always uses the KG (compare with ``kg_weight=0`` for the ablation).

Cold part: an item with no training interactions gets the softmax-weighted mean of the B
columns of its ``COLD_NEIGHBOURS`` warm KG neighbours (``cold_items.warm_kg_neighbours``),
times a read-out weight chosen on validation (``cold_items.choose_cold_weight``; 1 without one).

Measured (ml-100k RS 8:1:1, docs/quality.md): level with EASE on warm items; the KG itself adds
nothing measurable there (its one-hop neighbours alone rank below popularity), see the
ablation in ``benchmarks/quality_goals.py``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities, ModelConfig
from fusionrec.models.classic.ease import EASE, ease_memory
from fusionrec.models.kg.cold_items import choose_cold_weight, kg_item_profiles, warm_kg_neighbours
from fusionrec.models.registry import register
from fusionrec.nn.linalg import (
    DenseDtype,
    require_memory,
    resolve_device,
    sparse_gram,
    spd_inverse,
    torch_dtype,
)

__all__ = ["KGEASE", "KGEASEConfig", "kg_ease_weights", "REG_GRID", "KG_GRID"]

#: λ values tried on validation when ``reg_weight`` is None
REG_GRID: tuple[float, ...] = (250.0, 500.0, 1000.0)
#: KG weights tried on validation when ``kg_weight`` is None (no 0: the model uses the KG)
KG_GRID: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
#: the settings without a validation split
DEFAULT_REG = 500.0
DEFAULT_KG = 0.3


class KGEASEConfig(ModelConfig):
    """Settings of kg_ease (None = chosen on the validation split, see the module doc)."""

    reg_weight: float | None = Field(None, gt=0)
    """L2 regularisation λ added to the Gram matrix diagonal; None = chosen from ``REG_GRID``."""
    kg_weight: float | None = Field(None, ge=0)
    """Weight α of the KG Gram term, in units of the mean item popularity (0 = plain EASE);
    None = chosen from ``KG_GRID``."""
    cold_weight: float | None = Field(None, ge=0)
    """Scale of the cold items' KG-borrowed columns; None = chosen on ``valid`` (else 1)."""
    max_items: int = Field(60_000, ge=1)
    """Refuse to fit above this many items (the dense n_items² solve would not fit in memory)."""
    dtype: Literal["float32", "float64"] = "float32"
    """Precision of the dense solve (B is stored as float32)."""


def kg_ease_weights(
    x: sp.csr_matrix,
    profiles: sp.csr_matrix,
    reg_weight: float,
    kg_weight: float,
    *,
    dtype: DenseDtype = "float32",
    device: str = "auto",
    max_items: int = 60_000,
) -> np.ndarray:
    """B (float32, n_items², zero diagonal) of G = XᵀX + α·K·Kᵀ + λI with α = ``kg_weight`` times
    the mean of diag(XᵀX); ``profiles`` is the (n_items, n_entities) KG profile matrix K."""
    n = x.shape[1]
    if profiles.shape[0] != n:
        raise ConfigError(f"KG profiles have {profiles.shape[0]} rows for {n} items")
    if n > max_items:
        raise ConfigError(
            f"kg_ease needs a dense {n}x{n} matrix, above max_items={max_items}; raise max_items "
            "if you have the memory"
        )
    dev = resolve_device(device)
    # the KG Gram term is one more dense n² matrix on top of EASE's peak
    tdt = torch_dtype(dtype)
    require_memory(ease_memory(n, dtype) + n * n * tdt.itemsize, f"kg_ease on {n:,} items ({dtype})", dev)
    g = sparse_gram(x, tdt, dev)
    pop = float(g.diagonal().mean()) if n else 0.0
    alpha = float(kg_weight) * max(pop, 1e-12)
    if alpha > 0 and profiles.nnz:
        kk = (profiles @ profiles.T).toarray()
        g.add_(torch.as_tensor(kk, dtype=tdt, device=dev), alpha=alpha)
        del kk
    g.diagonal().add_(float(reg_weight))
    p = spd_inverse(g, "kg_ease's Gram matrix + λI")
    d = p.diagonal().clone()
    p.div_(d.neg().unsqueeze(0))
    p.fill_diagonal_(0.0)
    return p.to(torch.float32).cpu().numpy()


@register("kg_ease")
class KGEASE(EASE):
    """EASE with the items' KG neighbourhoods in its Gram matrix (closed form); cold items via the KG."""

    Config = KGEASEConfig
    capabilities = Capabilities(needs_kg=True, cold_start_items=True, cold_start_users=True)
    config: KGEASEConfig
    #: grids searched on validation (class attributes so a caller may narrow them)
    reg_grid: ClassVar[tuple[float, ...]] = REG_GRID
    kg_grid: ClassVar[tuple[float, ...]] = KG_GRID

    def _solve(self, x: sp.csr_matrix, prof: sp.csr_matrix, reg: float, kg: float) -> np.ndarray:
        c = self.config
        return kg_ease_weights(
            x, prof, reg, kg, dtype=c.dtype, device=self.fit_options_.device, max_items=c.max_items
        )

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        c = self.config
        kg = dataset.kg
        if kg is None:  # check_dataset refuses this first; kept for direct callers
            raise ConfigError("kg_ease needs a knowledge graph (.kg + .link)")
        x = dataset.matrix("csr")
        prof = kg_item_profiles(kg, dataset.n_items)
        regs = (c.reg_weight,) if c.reg_weight is not None else self.reg_grid
        kgs = (c.kg_weight,) if c.kg_weight is not None else self.kg_grid
        use_valid = valid is not None and valid.n_interactions > 0
        if len(regs) * len(kgs) > 1 and not use_valid:
            regs = (c.reg_weight or DEFAULT_REG,)
            kgs = (DEFAULT_KG if c.kg_weight is None else c.kg_weight,)
        warm = dataset.item_popularity() > 0
        self.valid_grid_: dict[tuple[float, float], float] = {}
        best: tuple[float, float, float, np.ndarray] | None = None
        for reg in regs:
            for kgw in kgs:
                self.B_ = self._solve(x, prof, float(reg), float(kgw))
                self.B_[:, ~warm] = 0.0  # cold columns are read out from the KG below
                if len(regs) * len(kgs) == 1:
                    best = (0.0, float(reg), float(kgw), self.B_)
                    break
                score = self._valid_ndcg(dataset, valid)  # type: ignore[arg-type]
                self.valid_grid_[(float(reg), float(kgw))] = score
                if best is None or score > best[0] + 1e-9:
                    best = (score, float(reg), float(kgw), self.B_)
        assert best is not None
        _, self.reg_weight_, self.kg_weight_, b = best
        self.B_ = b
        self.cold_weight_ = 1.0
        rows, nbrs, wts = warm_kg_neighbours(kg, warm)
        if len(rows):
            read = _borrowed(b, rows, nbrs, wts)

            def set_weight(w: float) -> None:
                self.B_[:, rows] = w * read
                self.B_[rows, rows] = 0.0

            self.cold_weight_ = (
                float(c.cold_weight)
                if c.cold_weight is not None
                else choose_cold_weight(self, set_weight, dataset, valid)
            )
            set_weight(self.cold_weight_)

    def _valid_ndcg(self, train: Dataset, valid: Dataset) -> float:
        from fusionrec.evaluation.evaluator import Evaluator

        return float(Evaluator(metrics=("ndcg",), ks=(10,)).evaluate(self, valid, exclude=(train,))["ndcg@10"])

    def _get_state(self) -> dict[str, np.ndarray]:
        chosen = np.array([self.reg_weight_, self.kg_weight_, self.cold_weight_], np.float64)
        return {**super()._get_state(), "chosen": chosen}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        self.reg_weight_, self.kg_weight_, self.cold_weight_ = (float(v) for v in state["chosen"])


def _borrowed(b: np.ndarray, rows: np.ndarray, nbrs: np.ndarray, wts: np.ndarray) -> np.ndarray:
    """(n_items, n_cold): each cold item's column as the ``wts``-weighted sum of its warm
    neighbours' columns of ``b`` (a sparse weight matrix: O(n_items x n_cold) memory)."""
    n_cold, k = nbrs.shape
    w = sp.csr_matrix(
        (wts.ravel().astype(b.dtype), (np.repeat(np.arange(n_cold), k), nbrs.ravel())),
        shape=(n_cold, b.shape[1]),
    )
    return np.asarray((w @ b.T).T)
