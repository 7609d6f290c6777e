"""FeatureTables / FeatureEncoder on a hand-made table with known encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.data import Dataset
from fusionrec.errors import ConfigError
from fusionrec.nn.features import FeatureEncoder, FeatureTables


@pytest.fixture
def ds() -> Dataset:
    inter = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "item_id": ["a", "b", "c"]})
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "kind": ["x", "y", None, "x"],
            "genres": [["g1", "g2"], ["g2"], [], None],
            "price": [1.0, 3.0, np.nan, 2.0],
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2"], "age": [20.0, 40.0]})
    emb = {"img": (np.array(["a", "c"]), np.array([[1.0, 2.0], [3.0, 4.0]]))}
    return Dataset.from_frames(
        inter,
        users,
        items,
        item_feature_types={"kind": "token", "genres": "token_seq", "price": "float"},
        item_embeddings=emb,
    )


def test_tables_known_codes(ds, guard_mutation):
    guard_mutation(ds)
    t = FeatureTables.from_dataset(ds, "item", min_count=1)
    order = ds.items.to_idx(np.array(["a", "b", "c", "d"]))
    assert t.tokens["kind"][order].tolist() == [1, 2, 0, 1]  # sorted codes, 0 = missing
    assert t.vocab_size("kind") == 3
    assert t.token_seqs["genres"][order].tolist() == [[1, 2], [2, 0], [0, 0], [0, 0]]
    price = t.numeric["price"][order, 0]
    np.testing.assert_allclose(price, [-np.sqrt(1.5), np.sqrt(1.5), 0.0, 0.0], atol=1e-6)
    img = t.dense["img"][order]
    np.testing.assert_allclose(img, [[1, 2], [0, 0], [3, 4], [0, 0]])
    assert t.n_fields == 4 and t.field_names == ["kind", "genres", "price", "img"]


def test_min_count_drops_rare_tokens(ds):
    t = FeatureTables.from_dataset(ds, "item", min_count=2)
    order = ds.items.to_idx(np.array(["a", "b", "c", "d"]))
    assert t.tokens["kind"][order].tolist() == [1, 0, 0, 1]  # "y" occurs once -> missing
    assert t.token_seqs["genres"][order].tolist() == [[1], [1], [0], [0]]  # only g2 kept


def test_extra_dense_columns_and_errors(ds):
    t = FeatureTables.from_dataset(
        ds, "item", columns=["kind"], include_embeddings=False, extra_dense={"lm": np.ones((4, 3))}
    )
    assert t.field_names == ["kind", "lm"] and t.dense["lm"].shape == (4, 3)
    with pytest.raises(ConfigError, match="nope"):
        FeatureTables.from_dataset(ds, "item", columns=["nope"])
    with pytest.raises(ValueError, match="shape"):
        FeatureTables.from_dataset(ds, "item", extra_dense={"bad": np.ones((3, 2))})
    u = FeatureTables.from_dataset(ds, "user")
    np.testing.assert_allclose(sorted(u.numeric["age"][:, 0]), [-1.0, 1.0])


def test_state_round_trip(ds):
    t = FeatureTables.from_dataset(ds, "item")
    back = FeatureTables.from_state(t.to_state("item."), "item.")
    assert back.field_names == t.field_names and back.n_rows == t.n_rows
    for a, b in zip(
        (t.tokens, t.token_seqs, t.numeric, t.dense),
        (back.tokens, back.token_seqs, back.numeric, back.dense),
        strict=True,
    ):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    empty = FeatureTables.from_state(FeatureTables(n_rows=5).to_state("u."), "u.")
    assert empty.n_rows == 5 and empty.n_fields == 0


def test_encoder_pools_and_masks(ds):
    t = FeatureTables.from_dataset(ds, "item", min_count=1)
    enc = FeatureEncoder(t, dim=4)
    rows = torch.as_tensor(ds.items.to_idx(np.array(["a", "b", "c", "d"])))
    f = enc.fields(rows)
    assert f.shape == (4, 4, 4) and enc(rows).shape == (4, 16)
    e_kind, e_gen = enc.emb["f0"].weight, enc.emb["f1"].weight
    torch.testing.assert_close(f[0, 0], e_kind[1])
    torch.testing.assert_close(f[2, 0], torch.zeros(4))  # missing token -> zero vector
    torch.testing.assert_close(f[0, 1], (e_gen[1] + e_gen[2]) / 2)  # mean of g1, g2
    torch.testing.assert_close(f[2, 1], torch.zeros(4))  # empty sequence -> zero vector
    w = enc.proj["f2"].weight[:, 0]
    torch.testing.assert_close(f[0, 2], w * float(t.numeric["price"][rows[0], 0]))
    empty = FeatureEncoder(FeatureTables(n_rows=3), dim=4)
    assert empty.fields(torch.arange(3)).shape == (3, 0, 4)
