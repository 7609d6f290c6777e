"""Fixtures for the service tests: a tiny fitted EASE saved to disk, settings on a temp SQLite DB, keys."""

from __future__ import annotations

import pytest

from fusionrec.models.classic.ease import EASE
from fusionrec.serving.auth import KeyStore
from fusionrec.serving.catalog import write_catalog
from fusionrec.serving.settings import ServeSettings


@pytest.fixture
def tiny_with_genres(tiny):
    """``tiny`` with genres: items a-c are 'Comedy', d-f 'Drama', and f also 'Action'."""
    import pandas as pd

    from fusionrec.data import Dataset

    items = pd.DataFrame(
        {
            "item_id": list("abcdef"),
            "title": [f"Item {c}" for c in "abcdef"],
            "genres": [
                ["Comedy"],
                ["Comedy"],
                ["Comedy"],
                ["Drama"],
                ["Drama"],
                ["Drama", "Action"],
            ],
        }
    )
    return Dataset.from_frames(tiny.interactions_frame(), items=items, name="tiny")


@pytest.fixture
def tiny_model(tiny_with_genres):
    return EASE(reg_weight=1.0).fit(tiny_with_genres)


@pytest.fixture
def model_dir(tmp_path, tiny_model, tiny_with_genres):
    d = tiny_model.save(tmp_path / "model")
    write_catalog(tiny_with_genres, d)
    return d


@pytest.fixture
def settings(tmp_path, model_dir):
    # gc_freeze off: each app start would run a full collection of the whole test process
    return ServeSettings(
        model_dir=model_dir,
        events_url=f"sqlite:///{tmp_path / 'serve.db'}",
        cache_size=100,
        gc_freeze=False,
    )


@pytest.fixture
def keys(settings):
    """(read key, admin key, revoked key)."""
    ks = KeyStore(settings.events_url)
    read, _ = ks.create("reader")
    admin, _ = ks.create("ops", ["read", "admin"])
    revoked, info = ks.create("old")
    ks.revoke(info.key_id)
    ks.engine.dispose()
    return read, admin, revoked


@pytest.fixture
def client(settings, keys):
    from fastapi.testclient import TestClient

    from fusionrec.serving import create_app

    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {keys[0]}"
        yield c
