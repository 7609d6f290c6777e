"""Fixtures of the compression tests: a small saved dataset (with a cached "text" item embedding,
so the text models train without a language model) and tiny models trained on it through the
experiment runner (so each folder has its experiment.json), once per session."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fusionrec.testing.toy import save_two_group_dataset

_TEXT = {"encoder_finetune": "frozen"}
#: case -> (registered model, tiny but real parameters); the torch cases train 3 epochs
TINY: dict[str, tuple[str, dict]] = {
    "bpr": ("bpr", {"embedding_dim": 16}),
    "lightgcn": ("lightgcn", {"embedding_dim": 16, "n_layers": 2}),
    "neumf": ("neumf", {"embedding_dim": 8, "mlp_embedding_dim": 8, "hidden_dims": [16, 8]}),
    "two_tower": ("two_tower", {"embedding_dim": 16, "hidden_dims": [16], "out_dim": 8}),
    "sasrec": ("sasrec", {"embedding_dim": 16, "n_heads": 2, "n_layers": 1, "ffn_dim": 32, "max_len": 6}),
    "lm_mf": ("lm_mf", {"embedding_dim": 16, **_TEXT}),
    "lm_sasrec": ("lm_sasrec", {"embedding_dim": 16, "n_heads": 2, "n_layers": 1, "ffn_dim": 32, "max_len": 6, "n_experts": 2, **_TEXT}),
    "lm_lightgcn": ("lm_lightgcn", {"embedding_dim": 16, "n_layers": 2, "fusion": "gate", **_TEXT}),
    "joint": ("joint", {"embedding_dim": 16, "rel_dim": 8, "sources": ["text"], **_TEXT}),
    "distill": ("distill", {"embedding_dim": 16, "teacher": {"name": "itemknn"}}),
    "distill_student": (
        "distill",
        {"teacher": {"name": "itemknn"}, "student": {"name": "two_tower", "params": {"embedding_dim": 16, "hidden_dims": [16], "out_dim": 8}}},
    ),
}
#: closed-form cases (no epochs)
CLOSED: dict[str, tuple[str, dict]] = {"ease": ("ease", {}), "lm_ease": ("lm_ease", {}), "pop": ("pop", {})}


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 users in two taste groups over 30 items, with titles, timestamps and text vectors."""
    return save_two_group_dataset(tmp_path_factory.mktemp("data") / "small_ds", text_dim=16)


@pytest.fixture(scope="session")
def trained(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``trained(case)``: the saved folder of the tiny model ``case`` (trained once per session)."""
    from fusionrec.experiment import RunOptions, run
    from fusionrec.experiment.config import config_from_dict

    root = tmp_path_factory.mktemp("models")
    done: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in done:
            if case in TINY:
                name, params = TINY[case]
                params = {**params, "epochs": 3, "batch_size": 64}
            else:
                name, params = CLOSED[case]
            cfg = config_from_dict(
                {
                    "data": {"name": str(small_dataset)},
                    "model": {"name": name, "params": params},
                    "eval": {"metrics": ["ndcg"], "ks": [10]},
                    "seed": 7,
                }
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run(cfg, RunOptions(output_dir=root / case))
            done[case] = Path(res.model_dir)
        return done[case]

    return get


@pytest.fixture
def compressed_pair(trained: Callable[[str], Path], tmp_path: Path) -> Callable[[str, str], tuple]:
    """``compressed_pair(case, method)``: ``(source folder, fp32 model, its scores of every user,
    the compressed model loaded back, its scores, the manifest)``, compressed into ``tmp_path/out``."""
    from fusionrec.compress import compress_folder
    from fusionrec.models.base import load_model

    def make(case: str, method: str) -> tuple:
        src = trained(case)
        ref_model = load_model(src, device="cpu")
        users = np.arange(ref_model.n_users)
        manifest = compress_folder(src, method, tmp_path / "out")
        model = load_model(tmp_path / "out", device="cpu")
        return src, ref_model, ref_model.score_indices(users), model, model.score_indices(users), manifest

    return make
