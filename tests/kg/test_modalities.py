"""attach_modality: sources keyed by item id, missing items -> NaN rows, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data.modalities import attach_modality, modality_mask
from fusionrec.errors import DataFormatError


def test_npy_with_ids_file_missing_items(tiny, tmp_path, guard_mutation):
    guard_mutation(tiny)
    mat = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    np.save(tmp_path / "image.npy", mat, allow_pickle=False)
    (tmp_path / "image.ids.txt").write_text("c\na\nzzz\n")  # zzz is not an item of tiny
    ds = attach_modality(tiny, "image", tmp_path / "image.npy")
    m = ds.item_embeddings["image"]
    assert m.shape == (6, 2)
    np.testing.assert_array_equal(m[tiny.items.index("a")], [3, 4])
    np.testing.assert_array_equal(m[tiny.items.index("c")], [1, 2])
    assert modality_mask(m).sum() == 2 and np.isnan(m[tiny.items.index("b")]).all()
    assert "image" not in tiny.item_embeddings  # the input Dataset is unchanged
    with pytest.raises(DataFormatError, match="zzz"):
        attach_modality(tiny, "image", tmp_path / "image.npy", unknown="raise")


def test_parquet_list_column_and_frame(tiny, tmp_path):
    df = pd.DataFrame({"item_id": ["a", "f"], "embedding": [[0.5, 1.5, 2.5], [1.0, 1.0, 1.0]]})
    df.to_parquet(tmp_path / "text.parquet")
    ds = attach_modality(tiny, "text", tmp_path / "text.parquet")
    np.testing.assert_allclose(ds.item_embeddings["text"][tiny.items.index("a")], [0.5, 1.5, 2.5])
    wide = pd.DataFrame({"item_id": ["b"], "x": [1.0], "y": [2.0]})
    ds2 = attach_modality(ds, "audio", wide)
    assert set(ds2.item_embeddings) == {"text", "audio"} and ds2.item_embeddings["audio"].shape == (
        6,
        2,
    )


def test_errors_name_the_problem(tiny, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((2, 3)), allow_pickle=False)
    with pytest.raises(DataFormatError, match="ids"):
        attach_modality(tiny, "x", tmp_path / "x.npy")
    with pytest.raises(DataFormatError, match="2 item ids for 3 rows"):
        attach_modality(tiny, "x", (np.array(["a", "b"]), np.ones((3, 2))))
    with pytest.raises(DataFormatError, match="duplicate item id 'a'"):
        attach_modality(tiny, "x", (np.array(["a", "a"]), np.ones((2, 2))))
    with pytest.raises(DataFormatError, match="NaN"):
        attach_modality(tiny, "x", (np.array(["a"]), np.array([[np.nan, 1.0]])))
    with pytest.raises(DataFormatError, match="item_id"):
        attach_modality(tiny, "x", pd.DataFrame({"id": ["a"], "v": [1.0]}))
    with pytest.raises(FileNotFoundError):
        attach_modality(tiny, "x", tmp_path / "missing.npy")
