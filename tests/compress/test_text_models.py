"""What is particular to the text models, joint and distill under compression: the cached item
text vectors are stored like a table (int8 / half) and kept exact under pruning, a distilled
model's student is what is compressed, and a model with a load step compression does not know
is refused. (Serving a compressed lm_sasrec: tests/compress/test_folders.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionrec.compress import compress_folder
from fusionrec.compress.model import check_compressible
from fusionrec.errors import ConfigError
from fusionrec.models.base import load_model
from fusionrec.models.classic.bpr import BPR


@pytest.mark.parametrize("name", ["lm_mf", "lm_sasrec", "lm_lightgcn", "joint"])
def test_cached_text_vectors_are_int8_in_memory_and_on_disk(trained: Callable[[str], Path], tmp_path: Path, name: str) -> None:
    from safetensors import safe_open

    src = trained(name)
    ref = load_model(src, device="cpu")
    compress_folder(src, "int8", tmp_path / "q")
    with safe_open(str(tmp_path / "q" / "state.safetensors"), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    assert dtypes["c.bank.memory.q8"] == "I8" and "c.bank.memory" not in dtypes
    m = load_model(tmp_path / "q", device="cpu")
    bank = m.inner_.module_.bank
    assert bank.parametrizations.memory.original0.dtype == torch.int8
    want = ref.item_text_vectors()
    got = m.item_text_vectors()  # the base model's method, on the dequantized vectors
    assert got.shape == want.shape and 0 < np.abs(got - want).max() <= 5e-2 * np.abs(want).max()


def test_pruning_leaves_the_cached_text_vectors_exact(trained: Callable[[str], Path], tmp_path: Path) -> None:
    src = trained("lm_mf")
    compress_folder(src, "prune:0.5", tmp_path / "p")
    np.testing.assert_array_equal(load_model(tmp_path / "p").item_text_vectors(), load_model(src).item_text_vectors())


def test_a_distilled_student_is_compressed_on_its_own(trained: Callable[[str], Path], tmp_path: Path) -> None:
    src = trained("distill_student")
    assert (src / "student").is_dir()
    manifest = compress_folder(src, "fp16", tmp_path / "s")
    assert manifest["base_model"] == "two_tower" and manifest["source_model"] == "distill"
    assert not (tmp_path / "s" / "student").exists()  # the folder is the compressed student alone
    ref, got = load_model(src), load_model(tmp_path / "s")
    assert got.recommend(["u1"], k=5)["item_id"].tolist() == ref.recommend(["u1"], k=5)["item_id"].tolist()


class _OwnRestore(BPR):
    name = "own_restore"

    def _set_state(self, state: dict[str, np.ndarray]) -> None:  # a load step compress cannot repeat
        super()._set_state(state)
        self.extra_ = 1


def test_a_model_with_an_unknown_load_step_is_refused(trained: Callable[[str], Path]) -> None:
    model = load_model(trained("bpr"))
    model.__class__ = _OwnRestore
    with pytest.raises(ConfigError, match="'own_restore' restores extra state of its own when loaded"):
        check_compressible(model)
