"""``fusionrec attach-modality`` end to end on a tiny config-built ViT (no hub download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fusionrec.data import Dataset

pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    df = pd.DataFrame({"user_id": ["u0", "u0", "u1"], "item_id": ["a", "b", "c"]})
    path = tmp_path / "ds"
    Dataset.from_frames(df, name="tiny").save(path)
    return path


@pytest.fixture
def vit_dir(tmp_path: Path) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    d = tmp_path / "vit"
    ViTModel(
        ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1,
                  num_attention_heads=2, intermediate_size=16)
    ).save_pretrained(d)  # fmt: skip
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(d)
    return d


def test_attach_image_modality(dataset_dir, vit_dir, tmp_path):
    from fusionrec.cli.main import app
    from fusionrec.encoders.vision import load_vision_encoder

    files = tmp_path / "img"
    files.mkdir()
    rng = np.random.default_rng(0)
    imgs = {}
    for item in ("a", "c", "zz"):  # zz is not an item of the dataset
        imgs[item] = Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
        imgs[item].save(files / f"{item}.png")
    res = CliRunner().invoke(
        app,
        ["attach-modality", "--dataset", str(dataset_dir), "--kind", "image",
         "--files", str(files), "--model", str(vit_dir), "--name", "poster"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())  # rich wraps long lines
    assert "2/3 items" in out and "1 files matched no item" in out
    ds = Dataset.load(dataset_dir)
    m = ds.item_embeddings["poster"]
    assert m.shape == (3, 8)
    row = {i: k for k, i in enumerate(ds.items.ids)}
    assert np.isnan(m[row["b"]]).all()
    want = load_vision_encoder(str(vit_dir)).encode([imgs["a"]])[0]
    np.testing.assert_allclose(m[row["a"]], want, atol=1e-5)


def test_attach_modality_errors(dataset_dir, tmp_path):
    from fusionrec.cli.main import app

    r = CliRunner().invoke(
        app, ["attach-modality", "-d", "ml-100k", "--kind", "image", "--files", str(tmp_path), "-m", "x"]
    )
    assert r.exit_code != 0 and "--output DIR" in str(r.exception)
    r = CliRunner().invoke(
        app, ["attach-modality", "-d", str(dataset_dir), "--kind", "video", "--files", str(tmp_path), "-m", "x"]
    )
    assert r.exit_code != 0 and "choose image or audio" in str(r.exception)
