"""Dataset save/load round trip (features, KG, embeddings) and IdMap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrec.data import IdMap, make_synthetic
from fusionrec.data.dataset import Dataset
from fusionrec.errors import UnknownIdError


def test_round_trip_everything(tmp_path: Path) -> None:
    ds = make_synthetic(30, 20, 5, seed=3)
    assert isinstance(ds, Dataset)
    back = Dataset.load(ds.save(tmp_path / "ds"))
    assert back.name == ds.name
    assert back.users == ds.users and back.items == ds.items
    np.testing.assert_array_equal(back.user_idx, ds.user_idx)
    np.testing.assert_array_equal(back.item_idx, ds.item_idx)
    np.testing.assert_array_equal(back.rating, ds.rating)
    np.testing.assert_array_equal(back.timestamp, ds.timestamp)
    assert back.item_feature_types == ds.item_feature_types
    assert back.user_feature_types == ds.user_feature_types
    assert back.text_fields == ds.text_fields
    assert back.item_text() == ds.item_text()
    assert back.kg is not None and back.kg.n_triples == ds.kg.n_triples
    assert back.kg.triples_frame().equals(ds.kg.triples_frame())
    np.testing.assert_array_equal(
        back.kg.entities.to_ids(back.kg.item_entity), ds.kg.entities.to_ids(ds.kg.item_entity)
    )
    assert set(back.item_embeddings) == {"image", "audio"}
    np.testing.assert_array_equal(back.item_embeddings["image"], ds.item_embeddings["image"])


def test_round_trip_seq_features_and_nan_embedding_rows(tmp_path: Path) -> None:
    import pandas as pd

    inter = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "b"]})
    items = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "tags": [["x", "y"], [], ["z"]], "vec": [[1.0], [2.0], [3.0]]}
    )
    emb = {"image": (np.array(["a", "c"]), np.array([[1, 2], [3, 4]], dtype=np.float32))}
    ds = Dataset.from_frames(inter, items=items, item_embeddings=emb)
    back = Dataset.load(ds.save(tmp_path / "x"))
    assert back.item_feature_types == {"tags": "token_seq", "vec": "float_seq"}
    assert back.item_features["tags"].tolist() == [["x", "y"], [], ["z"]]
    img = back.item_embeddings["image"]
    assert (
        img[0].tolist() == [1.0, 2.0] and np.isnan(img[1]).all() and img[2].tolist() == [3.0, 4.0]
    )


def test_save_is_atomic_on_overwrite(tmp_path: Path, tiny: Dataset) -> None:
    p = tiny.save(tmp_path / "t")
    tiny.save(p)  # overwrite in place
    assert sorted(x.name for x in tmp_path.iterdir()) == ["t"]
    assert Dataset.load(p).n_interactions == tiny.n_interactions


def test_idmap_basics() -> None:
    m = IdMap.from_values([3, 1, 3, 2, "1"], name="user")
    assert m.ids.tolist() == ["3", "1", "2"]  # first appearance, kept as strings
    assert IdMap.from_values(np.array([2.0, 1.0])).ids.tolist() == ["2", "1"]  # float ids -> "2"
    assert m.to_idx(["2", 3]).tolist() == [2, 0]
    assert m.to_idx(["9", "1"], unknown="mask").tolist() == [-1, 1]
    with pytest.raises(UnknownIdError, match="unknown user '9'"):
        m.to_idx(["1", "9"])
    with pytest.raises(ValueError, match="duplicate"):
        IdMap(["a", "a"])
    e = m.extend(["2", "7", "7"])
    assert e.ids.tolist() == ["3", "1", "2", "7"] and m.ids.tolist() == ["3", "1", "2"]
    assert "7" in e and "7" not in m


@settings(max_examples=50, deadline=None)
# numpy string arrays drop trailing NUL characters, so ids are drawn without "\x00"; lone
# surrogates are not valid Unicode text and are refused (test below)
@given(
    st.lists(
        st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_idmap_round_trip_property(values: list[str]) -> None:
    m = IdMap.from_values(values)
    idx = m.to_idx(values)
    assert m.to_ids(idx).tolist() == [str(v) for v in values]
    assert len(m) == len(set(values))
    # first-appearance order
    assert m.ids.tolist() == list(dict.fromkeys(values))


def test_idmap_refuses_an_id_that_is_not_valid_unicode() -> None:
    with pytest.raises(ValueError, match="not valid Unicode text"):
        IdMap.from_values(["a", "\ud800"])
