"""The EASE family under fp16/bf16: B stored and held in half precision, scored from the rows a
user's history touches; int8 and pruning refused (tests/compress/test_folders.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.compress import CompressedModel, compress_folder
from fusionrec.compress.dense import half_scores, history_rows
from fusionrec.errors import ModelStateError
from fusionrec.models.base import load_model
from fusionrec.ranking import mask_seen, topk

CLOSE = {"fp16": (1e-3, 0.9), "bf16": (1e-2, 0.9)}


def test_half_scores_known_answer() -> None:
    # values exact in fp16: the product is exact too
    b = torch.tensor([[0.0, 0.5, -1.0], [0.25, 0.0, 2.0], [1.5, -0.75, 0.0]], dtype=torch.float16)
    x = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], np.float32))
    want = np.array([[1.5, -0.25, -1.0], [0, 0, 0], [0.25, 0.0, 2.0]], np.float32)
    np.testing.assert_array_equal(half_scores(x, b), want)
    np.testing.assert_array_equal(half_scores(x, b, np.array([2, 0])), want[:, [2, 0]])
    np.testing.assert_array_equal(half_scores(sp.csr_matrix((2, 3), dtype=np.float32), b), np.zeros((2, 3)))


def test_history_rows_known_answer() -> None:
    m = history_rows([np.array([2, 0, 2]), np.array([], np.int64), np.array([1])], 3)
    np.testing.assert_array_equal(m.toarray(), [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        history_rows([np.array([3])], 3)


@pytest.mark.parametrize("name", ["ease", "lm_ease"])
@pytest.mark.parametrize("method", ["fp16", "bf16"])
def test_half_b_scores_close_to_fp32(compressed_pair: Callable[[str, str], tuple], tmp_path: Path, name: str, method: str) -> None:
    from safetensors import safe_open

    _, ref_model, ref, model, got, manifest = compressed_pair(name, method)
    users = np.arange(ref_model.n_users)
    assert isinstance(model, CompressedModel) and model.config.base == name
    assert model.B_.dtype == (torch.float16 if method == "fp16" else torch.bfloat16)  # held in half precision
    assert got.dtype == np.float32 and got.shape == ref.shape
    rel, min_overlap = CLOSE[method]
    err = float(np.abs(got - ref).max())
    assert 0 < err <= rel * float(np.abs(ref).max())
    top = [topk(mask_seen(s.copy(), users, ref_model.seen_), 10)[0] for s in (got, ref)]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(*top, strict=True)]) >= min_overlap
    items = np.array([3, 0, 7])
    np.testing.assert_allclose(model.score_indices(users[:5], items), got[:5][:, items], rtol=0, atol=1e-6)
    hist = [np.array([0, 2, 4]), np.array([20])]
    np.testing.assert_allclose(model.score_histories(hist), ref_model.score_histories(hist), atol=rel * float(np.abs(ref).max()))
    np.testing.assert_allclose(model.item_vectors(), ref_model.item_vectors(), atol=rel * float(np.abs(ref).max()))
    with safe_open(str(tmp_path / "out" / "state.safetensors"), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    assert dtypes[f"c.B.{method}"] == ("F16" if method == "fp16" else "I16") and "c.B" not in dtypes
    n = ref_model.n_items
    assert manifest["source_bytes"] - manifest["bytes"] >= 2 * n * n - 512  # B's half, less header growth
    if name == "lm_ease":
        assert model.cold_weight_ == ref_model.cold_weight_  # the other state arrays are exact
    assert model.recommend(["u0"], k=3)["item_id"].tolist() == ref_model.recommend(["u0"], k=3)["item_id"].tolist()
    model.save(tmp_path / "again")
    np.testing.assert_array_equal(load_model(tmp_path / "again").score_indices(users), got)


def test_half_b_folder_evaluates_through_the_cli(trained: Callable[[str], Path], tmp_path: Path, capsys) -> None:
    from fusionrec.cli.main import main

    src, out = trained("ease"), tmp_path / "ease-fp16"
    assert main(["compress", "--model-dir", str(src), "--method", "fp16", "--output", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model-dir", str(src), "--json"]) == 0
    ref = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["evaluate", "--model-dir", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["model"] == "compressed" and abs(got["metrics"]["ndcg@10"] - ref["metrics"]["ndcg@10"]) <= 0.02


def test_a_damaged_half_b_is_a_model_state_error(trained: Callable[[str], Path], tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    out = tmp_path / "d"
    compress_folder(trained("ease"), "fp16", out)
    state = load_file(str(out / "state.safetensors"))
    save_file({**state, "c.B.fp16": state["c.B.fp16"][:-1]}, str(out / "state.safetensors"))
    with pytest.raises(ModelStateError, match="must be a square"):
        load_model(out)
    save_file({**state, "c.B.fp16": state["c.B.fp16"].astype(np.float32)}, str(out / "state.safetensors"))
    with pytest.raises(ModelStateError, match="must be a square torch.float16 matrix"):
        load_model(out)
    save_file({k: v for k, v in state.items() if k != "c.B.fp16"} | {"c.other": np.zeros(1, np.float32)}, str(out / "state.safetensors"))
    with pytest.raises(ModelStateError, match="needs exactly one of B.fp16 / B.bf16"):
        load_model(out)
