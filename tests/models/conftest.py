"""Fixtures of the text-model tests (tests/models/)."""

from __future__ import annotations

import pytest
from _lm_data import make_groups


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    """(toy dataset with a "text" item embedding from the bundled encoder, cold space item ids,
    cold romance item ids) of ``make_groups``; encoded into a fresh cache once per test module."""
    from fusionrec.encoders import encode_items

    ds, cs, cr = make_groups()
    cache = tmp_path_factory.mktemp("emb")
    return ds.with_item_embedding("text", encode_items(ds, cache_dir=cache)), cs, cr
