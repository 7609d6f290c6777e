"""NegativeSampler: never a known positive, the same keys from canonical and unsorted csr."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fusionrec.data.samplers import NegativeSampler


def _positives() -> sp.csr_matrix:
    # user 0 saw items 0-3 of 5 (only item 4 is a negative), user 1 saw item 2
    return sp.csr_matrix(
        (np.ones(5), ([0, 0, 0, 0, 1], [0, 1, 2, 3, 2])), shape=(2, 5), dtype=np.float32
    )


def test_draws_only_negatives() -> None:
    s = NegativeSampler(_positives(), max_tries=200)  # 4 of 5 items are positives for user 0
    neg = s.sample(np.array([0, 1, 0, 1]), 50, np.random.default_rng(0))
    assert neg.shape == (4, 50)
    assert np.all(neg[[0, 2]] == 4)  # user 0's one negative
    assert not np.any(neg[[1, 3]] == 2) and set(np.unique(neg[[1, 3]])) == {0, 1, 3, 4}
    assert s.last_collisions == 0


def test_unsorted_and_duplicate_csr_gives_the_same_keys() -> None:
    canon = _positives()
    messy = sp.csr_matrix(
        (np.ones(6), np.array([3, 1, 0, 2, 1, 2]), np.array([0, 5, 6])), shape=(2, 5)
    )  # row 0 unsorted with item 1 twice
    assert not messy.has_canonical_format
    a, b = NegativeSampler(canon), NegativeSampler(messy)
    np.testing.assert_array_equal(a._keys, b._keys)
    np.testing.assert_array_equal(a._keys, [0, 1, 2, 3, 7])
    users = np.array([0, 0, 1, 1, 1])
    items = np.array([4, 1, 2, 0, 4])
    np.testing.assert_array_equal(a.is_positive(users, items), [False, True, True, False, False])
