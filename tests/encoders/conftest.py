"""Fixtures of the encoder tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def lm_cache(tmp_path_factory) -> str:
    """A private embedding cache folder for the session."""
    return str(tmp_path_factory.mktemp("emb-cache"))
