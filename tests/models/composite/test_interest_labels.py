"""Interest labels (genres, text topics, user tags) propagated as a model and as features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import load_model
from fusionrec.models.composite.interest_labels import (
    item_side_of_user_tags,
    multi_hot,
    text_topics,
    user_tag_labels,
)
from fusionrec.models.composite.label_propagation import (
    LabelPropagation,
    interest_features,
    with_interest_features,
)


def _data() -> Dataset:
    """Comedy items c1..c3, drama items d1..d3. u0 saw c1, c2; u1 saw c1, c3; u2 saw d1, d2;
    u3 saw d2, d3. Users carry a job tag: u0/u1 'clown', u2/u3 'actor'."""
    seen = {"u0": ["c1", "c2"], "u1": ["c1", "c3"], "u2": ["d1", "d2"], "u3": ["d2", "d3"]}
    inter = pd.DataFrame([(u, i) for u, its in seen.items() for i in its],
                         columns=["user_id", "item_id"])
    items = pd.DataFrame({"item_id": ["c1", "c2", "c3", "d1", "d2", "d3"],
                          "class": [["Comedy"]] * 3 + [["Drama"]] * 3})
    users = pd.DataFrame({"user_id": ["u0", "u1", "u2", "u3"],
                          "job": ["clown", "clown", "actor", "actor"]})
    return Dataset.from_frames(inter, users=users, items=items,
                               item_feature_types={"class": "token_seq"},
                               user_feature_types={"job": "token"})


def _cols(ds: Dataset, names: str) -> np.ndarray:
    return ds.items.to_idx(np.array(names.split(), dtype=object))


def test_multi_hot_and_user_tags_by_hand():
    m, vocab = multi_hot(pd.Series([["a", "b"], "b", None]))
    assert vocab == ["a", "b"]
    np.testing.assert_array_equal(m, [[1, 1], [0, 1], [0, 0]])
    ds = _data()
    tags, names = user_tag_labels(ds)
    assert names == ["job:actor", "job:clown"]
    # item c1 is seen by u0 and u1 (both clowns): clown share 1, actor 0
    side = item_side_of_user_tags(ds.matrix("csr"), tags)
    c1 = _cols(ds, "c1")[0]
    np.testing.assert_allclose(side[c1], [0.0, 1.0])
    with pytest.raises(ConfigError, match="not user features"):
        user_tag_labels(ds, ["mood"])


def test_text_topics_put_two_clear_clusters_apart():
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0, 0]) + 0.01 * rng.normal(size=(5, 3))
    b = np.array([0, 1.0, 0]) + 0.01 * rng.normal(size=(5, 3))
    t = text_topics(np.vstack([a, b]), 2, seed=0)
    assert t.shape == (10, 2)
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-5)
    top = t.argmax(1)
    assert len(set(top[:5])) == 1 and len(set(top[5:])) == 1 and top[0] != top[5]
    assert t.max(1).min() > 0.99  # near one-hot at temperature 0.05
    with pytest.raises(ConfigError, match="n_items, dim"):
        text_topics(np.zeros(3), 2, seed=0)


@pytest.mark.parametrize("labels", [("genres",), ("user_tags",), ("text",)])
def test_labels_alone_rank_the_users_genre_first(labels):
    """u0 (comedy fan) gets c3 (unseen comedy) above every drama, from each label source."""
    ds = _data()
    if labels == ("text",):  # item "texts": two well separated directions, comedy vs drama
        vec = np.array([[1, 0.1, 0], [1, 0, 0.1], [1, 0.05, 0.05],
                        [0, 1, 0.1], [0.1, 1, 0], [0.05, 1, 0.05]], np.float32)
        ds = ds.with_item_embedding("text", vec[np.argsort(_cols(ds, "c1 c2 c3 d1 d2 d3"))])
    m = LabelPropagation(labels=labels, label_weight=1.0, k=2, n_topics=2).fit(ds)
    u0 = ds.users.to_idx(np.array(["u0"], dtype=object))
    s = m.score_indices(u0, _cols(ds, "c3 d1 d2 d3"))[0]
    assert s[0] > s[1:].max()


def test_interests_as_a_feature_and_through_save_load(tmp_path):
    ds = _data()
    f = interest_features(ds, labels=("genres", "user_tags"), k=2)
    assert list(f.columns) == ["genre:Comedy", "genre:Drama", "job:actor", "job:clown"]
    assert f.loc["u0", "genre:Comedy"] > f.loc["u0", "genre:Drama"]
    assert f.loc["u2", "job:actor"] > f.loc["u2", "job:clown"]
    ds2 = with_interest_features(ds, labels=("genres",), k=2)
    assert ds2.user_feature_types["interest:genre:Comedy"] == "float"
    assert "job" in ds2.user_features.columns and ds.user_features.shape[1] == 1
    m = LabelPropagation(labels=("genres",), label_weight=0.5, k=2).fit(ds)
    back = load_model(m.save(tmp_path / "lp"))
    pd.testing.assert_frame_equal(back.user_interests(), m.user_interests())
    users = np.arange(ds.n_users)
    np.testing.assert_allclose(back.score_indices(users), m.score_indices(users))


def test_missing_label_sources_are_named():
    ds = _data()
    with pytest.raises(ConfigError, match="no item feature 'mood'"):
        LabelPropagation(labels=("genres",), genre_field="mood").fit(ds)
    with pytest.raises(ConfigError, match="at least one label source"):
        interest_features(ds, labels=())
    bare = Dataset.from_frames(pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}))
    with pytest.raises(ConfigError, match="no user features"):
        LabelPropagation(labels=("user_tags",)).fit(bare)
    assert sp.issparse(ds.matrix("csr"))
