"""Compressed folders of the torch models (the five of the table, the text models, joint and
distill) and of the EASE family: scores close to fp32 (stated tolerances), loaded back by
load_model, evaluated / recommended / served by the unchanged commands, bad inputs refused.

Tolerances, relative to the largest |fp32 score| of the model, over every user and item:
fp16 1e-3, bf16 1e-2, int8 5e-2 (per-row int8 tables; dynamic int8 activations for MLPs), ONNX
1e-5 (absolute). Top-10 lists (training items masked) overlap the fp32 ones by at least 0.9 for
fp16 and bf16 and 0.8 for int8, averaged over users. Pruning is checked for exact counts instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fusionrec.compress import MANIFEST_FILE, CompressedModel, compress_folder, read_manifest
from fusionrec.compress.folder import folder_bytes
from fusionrec.errors import ConfigError, ModelStateError
from fusionrec.models.base import load_model
from fusionrec.ranking import mask_seen, topk

MODELS = ["bpr", "lightgcn", "neumf", "two_tower", "sasrec"]
#: the text models, joint and distill (built-in MF student, and a two-tower ``student``)
MORE = ["lm_mf", "lm_sasrec", "lm_lightgcn", "joint", "distill", "distill_student"]
CLOSE = {"fp16": (1e-3, 0.9), "bf16": (1e-2, 0.9), "int8": (5e-2, 0.8)}


def _top10(model, scores: np.ndarray) -> np.ndarray:
    users = np.arange(model.n_users)
    return topk(mask_seen(scores.copy(), users, model.seen_), 10)[0]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


@pytest.mark.parametrize("name", MODELS + MORE)
@pytest.mark.parametrize("method", ["fp16", "bf16", "int8"])
def test_reduced_precision_scores_close_to_fp32(compressed_pair: Callable[[str, str], tuple], tmp_path: Path, name: str, method: str) -> None:
    src, ref_model, ref, model, got, manifest = compressed_pair(name, method)
    source_model = "distill" if name == "distill_student" else name
    base = "two_tower" if name == "distill_student" else name  # a distilled student compresses alone
    assert isinstance(model, CompressedModel) and model.config.base == base
    assert got.shape == ref.shape and got.dtype == np.float32
    rel, min_overlap = CLOSE[method]
    err = float(np.abs(got - ref).max())
    assert err <= rel * float(np.abs(ref).max()), f"{name} {method}: max abs error {err}"
    assert err > 0  # the weights really are stored at lower precision
    assert _overlap(_top10(model, got), _top10(ref_model, ref)) >= min_overlap
    # the manifest records what was done, and the folder is smaller than its source
    assert manifest == read_manifest(tmp_path / "out")
    assert manifest["method"] == method and manifest["ratio"] is None
    assert manifest["source"] == str(src.resolve()) and manifest["base_model"] == base
    assert manifest["source_model"] == source_model
    assert manifest["source_bytes"] == folder_bytes(src)
    assert manifest["bytes"] == folder_bytes(tmp_path / "out") - (tmp_path / "out" / MANIFEST_FILE).stat().st_size
    assert manifest["bytes"] < manifest["source_bytes"]


def test_int8_tables_are_int8_in_memory_and_on_disk(trained: Callable[[str], Path], tmp_path: Path) -> None:
    from safetensors import safe_open

    compress_folder(trained("bpr"), "int8", tmp_path / "q")
    with safe_open(str(tmp_path / "q" / "state.safetensors"), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    assert dtypes["c.user.weight.q8"] == "I8" and dtypes["c.item.weight.q8"] == "I8"
    assert dtypes["c.user.weight.scale"] == "F32"
    assert not any(k.startswith("module.") for k in dtypes)  # no fp32 copy of the weights
    m = load_model(tmp_path / "q", device="cpu")
    assert m.inner_.module_.user.parametrizations.weight.original0.dtype.itemsize == 1


def test_int8_mlp_layers_use_torchao_dynamic_kernels_where_the_model_allows(trained: Callable[[str], Path], tmp_path: Path) -> None:
    m1 = compress_folder(trained("two_tower"), "int8", tmp_path / "tt")
    assert m1["linear_int8"] == "dynamic"
    model = load_model(tmp_path / "tt", device="cpu")
    w = model.inner_.module_.user.net[0].weight
    assert type(w).__name__ == "Int8Tensor"
    # NeuMF slices its first Linear's weight directly, which torchao's tensor cannot transpose:
    # the int8 values are kept and dequantized on access instead
    m2 = compress_folder(trained("neumf"), "int8", tmp_path / "nm")
    assert m2["linear_int8"] == "weight_only"


@pytest.mark.parametrize("name", MODELS + MORE)
def test_magnitude_pruning_zeroes_the_exact_ratio_per_tensor(trained: Callable[[str], Path], tmp_path: Path, name: str) -> None:
    from fusionrec.compress.tensors import compressible_layers

    compress_folder(trained(name), "prune:0.3", tmp_path / "p")
    model = load_model(tmp_path / "p", device="cpu")
    tables, linears = compressible_layers(model.inner_.module_)
    assert tables
    sd = model.inner_.module_.state_dict()
    for key in [*tables, *linears]:
        w = sd[key]
        assert int((w == 0).sum()) == round(0.3 * w.numel()), key
    assert read_manifest(tmp_path / "p")["ratio"] == 0.3


@pytest.mark.parametrize("name", ["bpr", "sasrec", "two_tower"])
def test_structured_pruning_removes_whole_dimensions(trained: Callable[[str], Path], tmp_path: Path, name: str) -> None:
    from fusionrec.compress.tensors import compressible_layers

    src = trained(name)
    manifest = compress_folder(src, "prune-structured:0.25", tmp_path / "s")
    model = load_model(tmp_path / "s", device="cpu")
    tables, linears = compressible_layers(model.inner_.module_)
    sd = model.inner_.module_.state_dict()
    for key in tables:
        w = sd[key]
        assert int((w == 0).all(0).sum()) == round(0.25 * w.shape[1]), key  # whole embedding dims
    for key in linears:
        w = sd[key]
        assert int((w == 0).all(1).sum()) == min(round(0.25 * w.shape[0]), w.shape[0] - 1), key  # whole neurons
    assert manifest["bytes"] < manifest["source_bytes"]  # only kept columns / rows are stored
    assert np.isfinite(model.score_indices(np.arange(model.n_users))).all()


def test_compressed_folder_serves_evaluates_and_recommends_through_the_cli(trained: Callable[[str], Path], tmp_path: Path, capsys) -> None:
    from fusionrec.cli.main import main

    src = trained("bpr")
    out = tmp_path / "bpr-int8"
    assert main(["compress", "--model-dir", str(src), "--method", "int8", "--output", str(out), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["method"] == "int8" and (out / "experiment.json").is_file()
    assert main(["evaluate", "--model-dir", str(src), "--json"]) == 0
    ref = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["evaluate", "--model-dir", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["model"] == "compressed" and got["n_test_users"] == ref["n_test_users"]
    assert abs(got["metrics"]["ndcg@10"] - ref["metrics"]["ndcg@10"]) <= 0.05
    assert main(["recommend", "--model-dir", str(out), "--user", "u0", "-k", "3", "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "user_id,item_id,rank,score,fallback,title" and len(lines) == 4
    assert main(["compress", "--model-dir", str(src), "--method", "fp16", "--output", str(out)]) == 1
    assert "exists and is not empty" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "method"), [("sasrec", "fp16"), ("lm_sasrec", "int8")])
def test_compressed_folder_is_served_unchanged(trained: Callable[[str], Path], tmp_path: Path, name: str, method: str) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from fusionrec.serving import create_app
    from fusionrec.serving.auth import KeyStore
    from fusionrec.serving.settings import ServeSettings

    out = tmp_path / f"{name}-{method}"
    compress_folder(trained(name), method, out)
    settings = ServeSettings(model_dir=out, events_url=f"sqlite:///{tmp_path / 's.db'}", gc_freeze=False)
    key, _ = KeyStore(settings.events_url).create("reader")
    direct = load_model(out, device="cpu").recommend(["u3"], k=5)
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        r = c.post("/v1/recommend", json={"user_id": "u3", "k": 5})
        assert r.status_code == 200, r.text
        items = [x["item_id"] for x in r.json()["items"]]
    assert items == direct["item_id"].tolist()


def test_saved_again_and_reloaded_gives_the_same_scores(trained: Callable[[str], Path], tmp_path: Path) -> None:
    compress_folder(trained("lightgcn"), "bf16", tmp_path / "a")
    a = load_model(tmp_path / "a", device="cpu")
    a.save(tmp_path / "b")
    b = load_model(tmp_path / "b", device="cpu")
    users = np.arange(a.n_users)
    np.testing.assert_array_equal(a.score_indices(users), b.score_indices(users))


def test_bad_inputs_give_clear_errors(trained: Callable[[str], Path], tmp_path: Path) -> None:
    src = trained("bpr")
    with pytest.raises(ConfigError, match="unknown compression method 'int3'"):
        compress_folder(src, "int3", tmp_path / "x")
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        compress_folder(src, "prune:1.2", tmp_path / "x")
    with pytest.raises(ModelStateError, match="no such model folder"):
        compress_folder(tmp_path / "missing", "int8", tmp_path / "x")
    with pytest.raises(ConfigError, match="is the source folder"):
        compress_folder(src, "int8", src)
    with pytest.raises(ConfigError, match="inside the source folder"):
        compress_folder(src, "int8", src / "sub")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        compress_folder(src, "int8", tmp_path / "full")
    assert (tmp_path / "full" / "x.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    compress_folder(src, "fp16", tmp_path / "empty")  # an empty folder is fine
    with pytest.raises(ConfigError, match="already compressed"):
        compress_folder(tmp_path / "empty", "int8", tmp_path / "twice")


def test_non_torch_models_are_refused(trained: Callable[[str], Path], tmp_path: Path) -> None:
    src = trained("pop")
    before = sorted(p.name for p in src.iterdir())
    with pytest.raises(ConfigError, match="'pop' is not a torch model: compression .* applies to torch models"):
        compress_folder(src, "fp16", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in src.iterdir()) == before  # the source is never written to
    # EASE's dense B takes fp16/bf16 only (tests/compress/test_dense.py)
    for method in ("int8", "prune:0.5", "onnx"):
        with pytest.raises(ConfigError, match=f"'ease' is a closed-form model .* fp16 or bf16 .*; {method} applies to torch"):
            compress_folder(trained("ease"), method, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_the_source_folder_is_left_unchanged(trained: Callable[[str], Path], tmp_path: Path) -> None:
    src = trained("two_tower")
    snap = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    compress_folder(src, "prune:0.5", tmp_path / "o")
    assert {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()} == snap


def test_a_damaged_compressed_folder_is_a_model_state_error(trained: Callable[[str], Path], tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    out = tmp_path / "d"
    compress_folder(trained("bpr"), "int8", out)
    state = load_file(str(out / "state.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("c.")}, str(out / "state.safetensors"))
    with pytest.raises(ModelStateError, match="holds no compressed module tensors"):
        load_model(out)
    save_file({k: v for k, v in state.items() if not k.startswith("c.item.")}, str(out / "state.safetensors"))
    with pytest.raises(ModelStateError, match="lacks the model tensors item.weight"):
        load_model(out)
    bad = {**state, "c.user.weight.q8": state["c.user.weight.q8"].astype("float32")}
    save_file(bad, str(out / "state.safetensors"))
    with pytest.raises(ModelStateError, match="must be int8"):
        load_model(out)
