"""Label propagation: closed form on a small graph, user tags, and the recommender."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.composite.label_propagation import (
    LabelPropagation,
    propagate,
    user_knn_graph,
    user_tag_matrix,
)
from fusionrec.testing import check_recommender


def test_path_graph_matches_hand_computed_closed_form():
    # path 0-1-2: degrees 1,2,1 -> S = D^-1/2 W D^-1/2 has s01 = s12 = 1/sqrt(2)
    w = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float))
    y = np.array([[1.0], [0.0], [0.0]])  # only node 0 labelled
    r = 1 / np.sqrt(2)
    s = np.array([[0, r, 0], [r, 0, r], [0, r, 0]])
    # one step from F = Y with alpha = 0.5: 0.5*S*Y + 0.5*Y = [0.5, 0.5r, 0]
    np.testing.assert_allclose(propagate(w, y, alpha=0.5, n_iter=1).ravel(), [0.5, 0.5 * r, 0.0])
    # fixed point (1-a)(I - aS)^-1 Y
    closed = 0.5 * np.linalg.solve(np.eye(3) - 0.5 * s, y)
    got = propagate(w, y, alpha=0.5, n_iter=200, tol=1e-12)
    np.testing.assert_allclose(got, closed, atol=1e-10)
    assert got[1, 0] > got[2, 0] > 0  # the label decays with distance
    with pytest.raises(ConfigError, match="alpha"):
        propagate(w, y, alpha=1.0)
    with pytest.raises(ConfigError, match="rows"):
        propagate(w, np.ones((2, 1)))


def _genre_data() -> Dataset:
    # users a1..a3 watch action films; c1, c2 comedies; 'sparse' watched one film shared with a1
    rows = [(u, f"act{i}") for u in ("a1", "a2", "a3") for i in range(4)]
    rows += [(u, f"com{i}") for u in ("c1", "c2") for i in range(4)]
    rows += [("sparse", "act0")]
    items = pd.DataFrame({"item_id": [f"act{i}" for i in range(4)] + [f"com{i}" for i in range(4)]})
    items["class"] = [["Action"]] * 4 + [["Comedy"]] * 4
    return Dataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id"]),
        items=items,
        item_feature_types={"class": "token_seq"},
    )


def test_user_tag_matrix_fills_sparse_users():
    ds = _genre_data()
    tags = user_tag_matrix(ds, field="class", k=5, alpha=0.8)
    assert list(tags.columns) == ["Action", "Comedy"]
    assert tags.loc["sparse", "Action"] > 0 and tags.loc["sparse", "Comedy"] == 0
    assert tags.loc["c1", "Comedy"] > tags.loc["c1", "Action"]
    with pytest.raises(ConfigError, match="no item feature"):
        user_tag_matrix(ds, field="mood")


def test_recommender_gives_sparse_user_its_neighbours_items():
    ds = _genre_data()
    m = LabelPropagation(k=5, alpha=0.8).fit(ds)
    rec = m.recommend(["sparse"], k=3)["item_id"].tolist()
    assert set(rec) == {"act1", "act2", "act3"}
    g = user_knn_graph(ds.matrix("csr"), k=5)
    assert (g != g.T).nnz == 0 and g.diagonal().sum() == 0


def test_conformance():
    check_recommender(LabelPropagation, {"k": 10, "alpha": 0.5})
