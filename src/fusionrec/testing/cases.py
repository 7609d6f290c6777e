"""The one table of fast conformance cases: registry name -> parameters that train in
seconds on the 60x40 toy data. ``tests/models/test_conformance.py`` runs every check over
every case and fails when a registered model has none.

A new model adds its row here (see docs/conformance.md). ``overrides`` give a check its own
parameters where the fast ones cannot show the capability (e.g. a rating target for
``rating_range``, more epochs for a signal check); ``skip`` names checks the model
legitimately cannot meet, with the reason; ``slow`` marks a case the default run leaves out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.testing.toy import toy_dataset

__all__ = ["ConformanceCase", "CONFORMANCE_CASES", "case_dataset", "toy_text_dataset"]

DataKind = Literal["toy", "toy_text"]


@dataclass(frozen=True)
class ConformanceCase:
    """One row of the table."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    data: DataKind = "toy"
    label: str | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)
    slow: bool = False

    @property
    def id(self) -> str:
        return self.model if self.label is None else f"{self.model}[{self.label}]"


@lru_cache(maxsize=1)
def _toy_text_embedding() -> np.ndarray:
    from fusionrec.encoders import encode_items

    return encode_items(toy_dataset())


def toy_text_dataset() -> Dataset:
    """The toy data with a "text" item embedding from the packaged all-MiniLM-L6-v2 (offline;
    encoded once per process and cached on disk by the encoder)."""
    return toy_dataset().with_item_embedding("text", _toy_text_embedding())


_DATA: dict[str, Callable[[], Dataset]] = {"toy": toy_dataset, "toy_text": toy_text_dataset}


def case_dataset(case: ConformanceCase) -> Callable[[], Dataset]:
    """The factory of the case's dataset (called lazily by the checks)."""
    return _DATA[case.data]


_MF = {"epochs": 2, "batch_size": 128, "embedding_dim": 8}
_KG = {**_MF, "rel_dim": 4}
_TRAINED = {"epochs": 10, "lr": 0.05}
_SEQ = {"embedding_dim": 16, "n_heads": 2, "n_layers": 1, "ffn_dim": 32, "max_len": 5}

CONFORMANCE_CASES: tuple[ConformanceCase, ...] = (
    # classic
    ConformanceCase("pop"),
    ConformanceCase("ease", {"reg_weight": 10.0}),
    ConformanceCase("ease_large", {"reg_weight": 10.0, "rank": 8}),
    ConformanceCase("itemknn", {"k": 10}),
    ConformanceCase("itemknn", {"k": 5, "shrink": 2.0}, label="shrink"),
    ConformanceCase("bpr", {"epochs": 5}),
    ConformanceCase("static_embedding", {"embedding_dim": 8}),
    # neural
    ConformanceCase(
        "neumf",
        {
            "epochs": 2,
            "batch_size": 64,
            "embedding_dim": 4,
            "mlp_embedding_dim": 4,
            "hidden_dims": (8, 4),
        },
    ),  # fmt: skip
    ConformanceCase(
        "two_tower",
        {
            "embedding_dim": 8,
            "feature_dim": 4,
            "hidden_dims": (16,),
            "out_dim": 8,
            "epochs": 3,
            "batch_size": 32,
        },
        overrides={"cold_item_signal": {"epochs": 15}},
    ),
    ConformanceCase(
        "deepfm",
        {"embedding_dim": 4, "hidden_dims": (8,), "epochs": 3, "batch_size": 128, "lr": 0.01},
        overrides={
            "cold_item_signal": {"epochs": 15},
            "rating_range": {"target": "rating", "rating_threshold": None, "epochs": 30},
        },
    ),
    # graph, sequential
    ConformanceCase("lightgcn", {"epochs": 3, "batch_size": 64, "embedding_dim": 8}),
    ConformanceCase("sasrec", {**_SEQ, "epochs": 3, "batch_size": 8}),
    ConformanceCase(
        "gru4rec",
        {"embedding_dim": 16, "state_dim": 16, "max_len": 5, "epochs": 5, "batch_size": 8, "lr": 0.01},
    ),
    ConformanceCase(
        "caser",
        {"embedding_dim": 16, "window": 3, "n_h": 4, "max_len": 5, "epochs": 5, "batch_size": 8, "lr": 0.01},
    ),
    # knowledge graph / multimodal
    # the cold-item signal needs a trained model: 10 epochs at a high lr (0.6 s)
    ConformanceCase("cke", _KG, label="kg", overrides={"cold_item_signal": _TRAINED}),
    ConformanceCase(
        "cke",
        {**_KG, "modalities": ["image"]},
        label="image",
        overrides={"cold_item_signal": _TRAINED},
    ),
    ConformanceCase("kgat", {**_KG, "hidden_dims": [8, 4]}),
    ConformanceCase("kg_ease", {"reg_weight": 5.0, "kg_weight": 0.3}),
    ConformanceCase(
        "ltr_rerank",
        {"candidates": 10, "folds": 1, "min_data_in_leaf": 5, "rounds": 5, "features": ["knn", "time"]},
    ),
    ConformanceCase(
        "joint", {**_KG, "batch_size": 32}, data="toy_text", overrides={"cold_item_signal": _TRAINED}
    ),
    ConformanceCase("mm_mf", {**_MF, "modalities": ["image"], "fusion": "gate"}),
    # without modalities mm_mf declares no cold_start_items (its capabilities follow the config)
    ConformanceCase("mm_mf", _MF, label="id"),
    # text
    ConformanceCase("lm_ease", {"reg_weight": 5.0}, data="toy_text"),
    ConformanceCase("lm_mf", {"epochs": 3, "batch_size": 16}, data="toy_text"),
    ConformanceCase(
        "lm_lightgcn", {"epochs": 3, "batch_size": 16, "text_edges": 3}, data="toy_text"
    ),
    ConformanceCase("lm_sasrec", {"epochs": 2, "max_len": 4, "batch_size": 8}, data="toy_text"),
    ConformanceCase("text_seq", {"epochs": 2, "max_len": 4, "batch_size": 8}, data="toy_text"),
    # composite
    ConformanceCase(
        "ensemble", {"members": [{"name": "ease"}, {"name": "itemknn"}], "method": "weighted"}
    ),
    ConformanceCase(
        "ensemble",
        {"members": [{"name": "pop"}, {"name": "bpr", "params": {"epochs": 2}}]},
        label="pop+bpr",
    ),
    ConformanceCase(
        "distill",
        {"teacher": {"name": "ease"}, "embedding_dim": 4, "epochs": 2, "batch_size": 128},
    ),
    ConformanceCase(
        "multitask",
        {"epochs": 2, "batch_size": 128, "embedding_dim": 4, "hidden_dims": (8,), "tower_dim": 4},
        overrides={"rating_range": {"epochs": 20, "lr": 0.01}},
    ),
    ConformanceCase("label_propagation", {"k": 10, "alpha": 0.5}),
    # post-training compression (fusionrec.compress): fit trains the base model, then compresses it
    ConformanceCase("compressed", {"base": "bpr", "base_params": {**_MF}, "method": "fp16"}),
    ConformanceCase(
        "compressed",
        {"base": "sasrec", "base_params": {**_SEQ, "epochs": 2, "batch_size": 16}, "method": "int8"},
        label="sasrec-int8",
    ),
)
