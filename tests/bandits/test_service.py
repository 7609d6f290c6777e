"""The online loop in the service: exploration answers with propensities, feedback stored
with propensity and reward and learned from at once, drift metric, ``bandit update``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fusionrec.bandits import load_policy  # noqa: E402
from fusionrec.bandits.simulator import bpr_params  # noqa: E402
from fusionrec.data import make_synthetic  # noqa: E402
from fusionrec.models.classic.bpr import BPR  # noqa: E402
from fusionrec.serving import bandit_state  # noqa: E402
from fusionrec.serving.schemas import PolicyName  # noqa: E402
from fusionrec.serving.settings import ServeSettings  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    ds = make_synthetic(n_users=40, n_items=30, n_interactions_per_user=6, kg=False, modalities=())
    d = tmp_path_factory.mktemp("bandit-serve") / "model"
    BPR(**bpr_params(4, 3)).fit(ds, seed=0).save(d)
    return d


@pytest.fixture
def client(tmp_path, model_dir):
    from fastapi.testclient import TestClient

    from fusionrec.serving import create_app
    from fusionrec.serving.auth import KeyStore

    settings = ServeSettings(model_dir=model_dir, events_url=f"sqlite:///{tmp_path / 'serve.db'}", cache_size=100, gc_freeze=False)
    ks = KeyStore(settings.events_url)
    key, _ = ks.create("reader")
    ks.engine.dispose()
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        c.settings = settings
        yield c


def test_schema_lists_exactly_the_service_policies():
    assert set(PolicyName.__args__) == {"greedy", *bandit_state.SERVICE_PARAMS}


def test_greedy_is_the_default_with_propensity_one(client):
    body = client.post("/v1/recommend", json={"user_id": "u1", "k": 3}).json()
    assert body["policy"] == "greedy" and [i["propensity"] for i in body["items"]] == [1.0, 1.0, 1.0]


def test_exploration_answers_carry_propensities(client):
    body = client.post("/v1/recommend", json={"user_id": "u1", "k": 4, "policy": "egreedy"}).json()
    assert body["policy"] == "egreedy" and body["strategy"].endswith("+egreedy") and len(body["items"]) == 4
    props = [i["propensity"] for i in body["items"]]
    assert all(0 < p <= 1 for p in props)
    assert len({i["item_id"] for i in body["items"]}) == 4
    r = client.post("/v1/recommend", json={"user_id": "u1", "k": 2, "policy": "random"}).json()
    svc = client.app.state.service
    u = svc.state.model.users_.index("u1")
    n_unseen = svc.state.model.n_items - svc.state.model.seen_[u].nnz  # every unseen item is a candidate
    assert [i["propensity"] for i in r["items"]] == pytest.approx([1 / n_unseen, 1 / (n_unseen - 1)])
    bad = client.post("/v1/recommend", json={"user_id": "u1", "policy": "nope"})
    assert bad.status_code == 422 and "policy" in bad.text


def test_feedback_updates_the_policy_so_the_next_answer_reflects_it(client):
    ask = {"user_id": "u2", "k": 5, "policy": "ucb1", "exclude_seen": False}
    first = client.post("/v1/recommend", json=ask).json()
    shown = first["items"][0]
    # UCB1 plays unplayed arms first: after feedback on the first item, it moves on
    fb = client.post("/v1/feedback", json={"user_id": "u2", "item_id": shown["item_id"], "event": "view"})
    assert fb.status_code == 201 and fb.json()["bandit"] is True
    svc = client.app.state.service
    pol = svc.bandits.policies["ucb1"]
    idx = svc.state.model.items_.index(shown["item_id"])
    assert pol.counts[idx] == 1 and pol.sums[idx] == 0.0
    again = client.post("/v1/recommend", json=ask).json()
    assert [i["item_id"] for i in again["items"]] == [i["item_id"] for i in first["items"][1:]] + [again["items"][4]["item_id"]]
    assert shown["item_id"] not in [i["item_id"] for i in again["items"]]
    import sqlalchemy as sa

    with svc.engine.connect() as conn:
        rows = conn.execute(sa.select(bandit_state.bandit_feedback)).all()
    assert len(rows) == 1 and rows[0].policy == "ucb1" and rows[0].propensity == shown["propensity"] and rows[0].reward == 0.0
    # an explicit policy, propensity and reward are stored as given
    fb = client.post("/v1/feedback", json={"user_id": "u9", "item_id": "i3", "event": "click", "policy": "linucb", "propensity": 0.25})
    assert fb.json()["bandit"] is True
    plain = client.post("/v1/feedback", json={"user_id": "u9", "item_id": "i4", "event": "click"})
    assert plain.json()["bandit"] is False
    bad = client.post("/v1/feedback", json={"user_id": "u9", "item_id": "i4", "event": "click", "policy": "linucb", "propensity": 0})
    assert bad.status_code == 422


def test_linucb_learns_from_service_feedback(client):
    svc = client.app.state.service
    for _ in range(20):
        body = client.post("/v1/recommend", json={"user_id": "u5", "k": 1, "policy": "linucb", "exclude_seen": False}).json()
        client.post("/v1/feedback", json={"user_id": "u5", "item_id": body["items"][0]["item_id"], "event": "click"})
    pol = svc.bandits.policies["linucb"]
    assert pol.t == 20 and np.all(np.isfinite(pol.theta)) and np.abs(pol.theta).sum() > 0


def test_drift_raises_a_metric_and_a_log_line(client, caplog):
    svc = client.app.state.service
    b = bandit_state.bandits_of(svc)
    state = svc.state
    rng = np.random.default_rng(0)
    with caplog.at_level("WARNING", logger="fusionrec.serving"):
        for r in np.r_[rng.random(2000) < 0.9, rng.random(2000) < 0.1]:
            b.learn(state, "ts", 0, float(r), None)
    value = [ln for ln in svc.metrics.render().decode().splitlines() if ln.startswith('fusionrec_bandit_drift_total{policy="ts"}')]
    assert value and float(value[0].split()[-1]) >= 1
    assert any("bandit drift: policy=ts" in r.getMessage() for r in caplog.records)


def test_bandit_update_folds_stored_feedback(client, tmp_path, model_dir):
    from fusionrec.cli.main import main

    for u in ("u1", "u2", "u3"):
        body = client.post("/v1/recommend", json={"user_id": u, "k": 2, "policy": "lints"}).json()
        for it in body["items"]:
            client.post("/v1/feedback", json={"user_id": u, "item_id": it["item_id"], "event": "rate", "value": 5.0})
    db = client.settings.events_url
    out = tmp_path / "states"
    assert main(["bandit", "update", "--events", db, "--model-dir", str(model_dir), "--out", str(out)]) == 0
    pol = load_policy(out / "lints")
    assert pol.t == 6 and pol.last_event_id >= 6
    # a second run folds nothing new
    assert main(["bandit", "update", "--events", db, "--model-dir", str(model_dir), "--out", str(out), "--policies", "lints"]) == 0
    assert load_policy(out / "lints").t == 6
