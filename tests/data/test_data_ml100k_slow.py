"""The real MovieLens-100k through the public loader (fetched once into $FUSIONREC_HOME)."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import Dataset


@pytest.mark.slow
def test_ml100k_counts(ml100k: Dataset) -> None:
    ds = ml100k
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100000)
    assert sorted(np.unique(ds.rating).tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    # first line of u.data / ml-100k.inter: 196 242 3 881250949
    assert ds.users.ids[ds.user_idx[0]] == "196" and ds.items.ids[ds.item_idx[0]] == "242"
    assert ds.rating[0] == 3.0 and ds.timestamp[0] == 881250949.0
    assert ds.matrix().nnz == 100000  # no duplicate (user, item) pairs
    titles = dict(zip(ds.items.ids.tolist(), ds.item_titles().tolist(), strict=True))
    assert titles["1"] == "Toy Story"
    assert ds.user_features is not None and set(ds.user_feature_types) == {
        "age",
        "gender",
        "occupation",
        "zip_code",
    }
    assert ds.kg is not None
    assert ds.kg.n_linked_items == 1598  # 1,599 lines in ml-100k.link minus the header
    assert ds.kg.n_triples == 91631  # 91,632 lines in ml-100k.kg minus the header
