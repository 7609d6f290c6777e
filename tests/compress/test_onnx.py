"""ONNX export: onnxruntime scores equal torch's to 1e-5 for every exported model, the folder
loads with onnxruntime scoring (torch module only on demand) and serves item subsets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fusionrec.compress import compress_folder
from fusionrec.models.base import load_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ATOL = 1e-5


# the exporter takes ~5-10 s a model on 2 shared cores: three paths run by default (plain users,
# a fixed-batch graph, histories), the other two models with -m slow
@pytest.mark.parametrize(
    "name",
    ["bpr", "neumf", "sasrec", pytest.param("lightgcn", marks=pytest.mark.slow), pytest.param("two_tower", marks=pytest.mark.slow)],
)
def test_onnx_scores_equal_torch(trained: Callable[[str], Path], tmp_path: Path, name: str) -> None:
    src = trained(name)
    ref_model = load_model(src, device="cpu")
    users = np.arange(ref_model.n_users)
    ref = ref_model.score_indices(users)
    compress_folder(src, "onnx", tmp_path / "o")
    assert (tmp_path / "o" / "model.onnx").stat().st_size > 0
    model = load_model(tmp_path / "o", device="cpu")
    assert model.onnx_ is not None and model.inner_ is None  # scoring needs no torch module
    got = model.score_indices(users)
    assert model.inner_ is None
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL)
    # odd batch sizes (NeuMF's graph has a fixed batch: chunks are padded) and item subsets
    for rows in (users[:1], users[3:10], users[::-1]):
        np.testing.assert_allclose(model.score_indices(rows), ref[rows], rtol=0, atol=ATOL)
    items = np.array([4, 0, 7])
    np.testing.assert_allclose(model.score_indices(users[:5], items), ref[:5][:, items], rtol=0, atol=ATOL)
    assert model.score_indices(np.zeros(0, np.int64)).shape == (0, ref_model.n_items)


def test_onnx_folder_loads_torch_only_for_what_onnx_does_not_answer(trained: Callable[[str], Path], tmp_path: Path) -> None:
    src = trained("bpr")
    compress_folder(src, "onnx", tmp_path / "o")
    model = load_model(tmp_path / "o", device="cpu")
    recs = model.recommend(["u1"], k=4)
    assert len(recs) == 4 and model.inner_ is None
    vecs = model.item_vectors()  # the torch module loads on demand
    assert model.inner_ is not None
    np.testing.assert_array_equal(vecs, load_model(src, device="cpu").item_vectors())


def test_a_damaged_onnx_file_is_a_model_state_error(trained: Callable[[str], Path], tmp_path: Path) -> None:
    from fusionrec.errors import ModelStateError

    compress_folder(trained("bpr"), "onnx", tmp_path / "o")
    (tmp_path / "o" / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(ModelStateError, match="model.onnx"):
        load_model(tmp_path / "o")
