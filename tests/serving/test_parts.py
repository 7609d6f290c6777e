"""Unit tests of the service's parts: cache, MMR, ANN index, embedding path, settings, keys, retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fusionrec.cli.main import main as cli
from fusionrec.errors import ConfigError
from fusionrec.models.classic.static_embedding import StaticEmbedding
from fusionrec.rerank import mmr
from fusionrec.serving import create_app
from fusionrec.serving.ann import AnnIndex
from fusionrec.serving.auth import KeyStore, pseudonymize
from fusionrec.serving.cache import AnswerCache
from fusionrec.serving.deps import get_model_state
from fusionrec.serving.engine import ModelState, recommend
from fusionrec.serving.events import EventStore
from fusionrec.serving.retrain import fold_events
from fusionrec.serving.settings import ServeSettings


def test_lru_cache_evicts_and_invalidates_per_user():
    c = AnswerCache(maxsize=2)
    c.put("u1", ("u1", 1), "a")
    c.put("u2", ("u2", 1), "b")
    assert c.get(("u1", 1)) == "a"  # u1 now most recent
    c.put("u3", ("u3", 1), "c")  # evicts u2
    assert c.get(("u2", 1)) is None and c.get(("u1", 1)) == "a"
    assert c.invalidate_user("u1") == 1 and c.get(("u1", 1)) is None
    assert len(c) == 1
    c.clear()
    assert len(c) == 0


def test_mmr_hand_computed():
    # items 0 and 1 are identical, 2 is orthogonal; relevance 1.0, 0.9, 0.5
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    cand = np.array([0, 1, 2])
    rel = np.array([1.0, 0.9, 0.5])
    assert mmr(cand, rel, v, 3, 1.0).tolist() == [0, 1, 2]
    # lam=0.5: after 0, item1 = 0.5*0.8 - 0.5*1 = -0.1, item2 = 0.5*0 - 0 = 0 -> 2 first
    assert mmr(cand, rel, v, 2, 0.5).tolist() == [0, 2]
    with pytest.raises(ValueError, match="lam must be in"):
        mmr(cand, rel, v, 2, 1.5)


def test_ann_exact_below_threshold_and_approx_above():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    q = rng.standard_normal((20, 16)).astype(np.float32)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    exact = AnnIndex.build(x, threshold=5000)
    assert exact.exact and exact.kind == "flat"
    idx, _ = exact.search(q, 10)
    assert (idx == truth).all()
    approx = AnnIndex.build(x, threshold=1000, kind="ivf", nprobe=64)
    assert not approx.exact and approx.kind == "ivf"
    idx, _ = approx.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, truth, strict=True)])
    assert recall > 0.9
    hnsw = AnnIndex.build(x, threshold=1000, kind="hnsw", nprobe=64)
    idx, _ = hnsw.search(q, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, truth, strict=True)]) > 0.9


def test_embedding_model_served_through_ann_matches_exact(tmp_path, settings, keys):
    m = StaticEmbedding.synthetic(n_users=50, n_items=5000, dim=16, n_clusters=20, seed=1)
    d = m.save(tmp_path / "emb")
    state = ModelState.load(d, ann_threshold=1000, ann_nprobe=64)
    assert state.ann is not None and state.ann.kind == "ivf"
    assert (d / "ann.faiss").exists()  # saved beside the model, reused next load
    assert ModelState.load(d, ann_threshold=1000).ann.kind == "ivf"
    hits = 0
    for u in range(20):
        got = recommend(state, f"u{u}", 10)
        assert got.strategy == "ann"
        exp_items, _ = m.recommend_indices(np.array([u]), 10)
        hits += len(set(got.items.tolist()) & set(exp_items[0].tolist()))
        seen = m.seen_.indices[m.seen_.indptr[u] : m.seen_.indptr[u + 1]]
        assert not set(seen) & set(got.items.tolist())
    assert hits / 200 > 0.9
    # exact re-ranking: returned scores are the model's own scores, sorted
    got = recommend(state, "u3", 10)
    assert np.allclose(got.scores, m.score_indices(np.array([3]), got.items)[0], atol=1e-5)
    assert np.all(np.diff(got.scores) <= 0)
    # diversity re-ranking changes the list but keeps k items
    div = recommend(state, "u3", 10, diversity=0.7)
    assert len(div.items) == 10 and len(set(div.items.tolist())) == 10
    # through HTTP with an injected state
    app = create_app(settings.model_copy(update={"model_dir": None}))
    app.dependency_overrides[get_model_state] = lambda: state
    with TestClient(app) as c:
        r = c.post("/v1/recommend", json={"user_id": "u3", "k": 5}, headers={"X-API-Key": keys[0]})
        assert r.status_code == 200 and r.json()["strategy"] == "ann"
        assert [x["item_id"] for x in r.json()["items"]] == [
            str(m.items_.ids[i]) for i in got.items[:5]
        ]


def test_static_embedding_fit_is_svd(tiny):
    m = StaticEmbedding(embedding_dim=2).fit(tiny, seed=0)
    out = m.recommend(["u0"], k=1)
    assert out["item_id"].tolist() == ["c"]


def test_settings_from_env():
    s = ServeSettings.from_env(
        {"FUSIONREC_PORT": "9001", "FUSIONREC_MAX_K": "50", "FUSIONREC_HOME": "/tmp/x"},
        host="0.0.0.0",
    )
    assert s.port == 9001 and s.max_k == 50 and s.host == "0.0.0.0"
    assert s.events_url == "sqlite:////tmp/x/serving.db"
    with pytest.raises(ConfigError, match="port"):
        ServeSettings.from_env({"FUSIONREC_PORT": "http"})


def test_keys_hashed_and_pseudonyms(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    ks = KeyStore(url)
    key, info = ks.create("svc", ["read", "admin"])
    import sqlalchemy as sa

    with ks.engine.connect() as conn:
        row = conn.execute(sa.text("select * from api_keys")).mappings().one()
    assert key.split("_", 2)[2] not in str(dict(row))  # the secret is not stored
    assert ks.check(key).status == "ok" and ks.check(key).key.scopes == ("read", "admin")
    ks.revoke(info.key_id)
    assert ks.check(key).status == "revoked"
    with pytest.raises(ConfigError, match="no API key with id 'nope'"):
        ks.revoke("nope")
    with pytest.raises(ConfigError, match="unknown scope 'root'"):
        ks.create("x", ["root"])
    a, b = pseudonymize("u1", b"k1"), pseudonymize("u1", b"k2")
    assert a != b and a == pseudonymize("u1", b"k1") and "u1" not in a


def test_keys_cli(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    assert cli(["keys", "create", "--name", "web", "--admin", "--db", url]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("frk_")
    assert KeyStore(url).check(key).status == "ok"
    assert cli(["keys", "list", "--db", url]) == 0
    assert "web" in capsys.readouterr().out
    assert cli(["keys", "revoke", key.split("_")[1], "--db", url]) == 0
    assert KeyStore(url).check(key).status == "revoked"
    assert cli(["keys", "revoke", "missing", "--db", url]) == 1


def test_fold_events_extends_id_maps(tiny_with_genres, guard_mutation):
    ds = guard_mutation(tiny_with_genres)
    ev = pd.DataFrame(
        {
            "user_id": ["u0", "new"],
            "item_id": ["d", "zz"],
            "event": ["rate", "click"],
            "value": [2.0, None],
            "ts": [100.0, 101.0],
        }
    )
    out = fold_events(ds, ev)
    assert out.n_interactions == ds.n_interactions + 2
    assert (
        out.users.ids[: ds.n_users].tolist() == ds.users.ids.tolist() and out.users.ids[-1] == "new"
    )
    assert out.items.ids[-1] == "zz" and len(out.item_features) == out.n_items
    assert out.rating[-2:].tolist() == [2.0, 5.0]
    assert set(out.history("new")) == {"zz"}


def test_retrain_cli_folds_feedback(tmp_path, model_dir, tiny_with_genres, capsys):
    from fusionrec.models.base import load_model

    db = tmp_path / "ev.db"
    store = EventStore(f"sqlite:///{db}")
    store.add("u0", "d", "purchase")
    store.add("brand-new", "e", "click")
    store.dispose()
    ds_dir = tiny_with_genres.save(tmp_path / "ds")
    out = tmp_path / "registry" / "v2"
    rc = cli(
        [
            "retrain",
            "--events",
            str(db),
            "--model-dir",
            str(model_dir),
            "--dataset",
            str(ds_dir),
            "--output",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr()
    assert "folded 2 events" in capsys.readouterr().out
    m = load_model(out)
    assert m.name == "ease" and m.config.reg_weight == 1.0
    assert "brand-new" in m.users_ and m.seen_[m.users_.index("u0"), m.items_.index("d")] == 1
    assert (out / "catalog.parquet").exists()
    assert (
        cli(
            [
                "retrain",
                "--events",
                str(db),
                "--model-dir",
                str(tmp_path / "nope"),
                "--dataset",
                str(ds_dir),
                "--output",
                str(out),
            ]
        )
        == 1
    )


def test_serve_cli_refuses_missing_model(tmp_path, capsys):
    assert cli(["serve", "--model-dir", str(tmp_path)]) == 1
    assert "config.json missing" in capsys.readouterr().err
