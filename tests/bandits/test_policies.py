"""Policies: known-answer convergence, planted linear rewards, propensities, slates, state, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.bandits import BanditInputError, Policy, load_policy, make_policy
from fusionrec.errors import ConfigError, ModelStateError

P_ARMS = np.array([0.2, 0.5, 0.75, 0.4, 0.3])


def _bernoulli_run(policy: Policy, rounds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arms = np.arange(len(P_ARMS))
    picks = np.zeros(rounds, np.int64)
    for t in range(rounds):
        d = policy.select(arms, k=1, rng=rng)
        a = int(d.arms[0])
        policy.update(np.array([a]), np.array([float(rng.random() < P_ARMS[a])]))
        picks[t] = a
    return picks


@pytest.mark.parametrize("name", ["ucb1", "ts"])
def test_ucb_and_ts_converge_to_the_best_arm(name):
    for seed in (0, 1, 2):
        picks = _bernoulli_run(make_policy(name, n_arms=5), 3000, seed)
        assert np.mean(picks[-500:] == 2) > 0.9, (name, seed, np.bincount(picks[-500:], minlength=5))


def test_egreedy_per_arm_with_decay_converges_and_decays():
    pol = make_policy("egreedy", estimator="arm", n_arms=5, epsilon=0.5, decay=0.01, prior_mean=1.0)
    assert pol.epsilon == 0.5
    picks = _bernoulli_run(pol, 3000, 0)
    assert pol.epsilon == pytest.approx(0.5 / (1 + 0.01 * 3000))
    assert np.mean(picks[-500:] == 2) > 0.85


def test_ucb1_plays_each_unplayed_arm_first_in_candidate_order():
    pol = make_policy("ucb1", n_arms=4)
    order = []
    for _ in range(4):
        a = int(pol.select(np.array([3, 1, 0, 2]), rng=0).arms[0])
        pol.update(np.array([a]), np.array([0.0]))
        order.append(a)
    assert order == [3, 1, 0, 2]


@pytest.mark.parametrize("spec", [dict(name="linucb"), dict(name="lints", v=0.05), dict(name="egreedy", epsilon=0.2)])
def test_linear_policies_recover_a_planted_linear_reward(spec):
    spec = dict(spec)
    name = spec.pop("name")
    rng = np.random.default_rng(3)
    theta_star = np.array([0.5, -0.3, 0.2, 0.1])
    pol = make_policy(name, dim=4, **spec)
    for _ in range(3000):
        X = rng.normal(size=(10, 4))
        d = pol.select(np.arange(10), X, rng=rng)
        x = X[d.positions]
        pol.update(d.arms, x @ theta_star + 0.1 * rng.normal(size=1), x)
    theta_hat = pol.ridge.theta if name == "egreedy" else pol.theta
    np.testing.assert_allclose(theta_hat, theta_star, atol=0.03)


def test_linucb_disjoint_learns_one_theta_per_arm():
    rng = np.random.default_rng(0)
    thetas = np.array([[1.0, 0.0], [0.0, 1.0], [-0.5, 0.5]])
    pol = make_policy("linucb", dim=2, mode="disjoint", n_arms=3, alpha=1.0)
    for _ in range(1500):
        X = rng.normal(size=(3, 2))
        d = pol.select(np.arange(3), X, rng=rng)
        a = int(d.arms[0])
        pol.update(d.arms, np.array([X[d.positions[0]] @ thetas[a] + 0.05 * rng.normal()]), X[d.positions])
    np.testing.assert_allclose(pol.arm.theta(np.arange(3)), thetas, atol=0.1)


def test_hybrid_linucb_learns_shared_and_arm_parts():
    # reward = z . beta + x . theta_a with z the first 2 columns (shared), x the last 2 (per arm)
    rng = np.random.default_rng(1)
    beta = np.array([0.6, -0.4])
    thetas = np.array([[0.3, 0.0], [0.0, 0.3], [-0.2, -0.2], [0.1, 0.1]])
    pol = make_policy("linucb", dim=4, mode="hybrid", shared_dim=2, n_arms=4, alpha=1.0)
    hits = 0
    for t in range(3000):
        C = rng.normal(size=(4, 4))
        mean = C[:, :2] @ beta + np.einsum("nd,nd->n", C[:, 2:], thetas)
        d = pol.select(np.arange(4), C, rng=rng)
        p = int(d.positions[0])
        pol.update(d.arms, np.array([mean[p] + 0.05 * rng.normal()]), C[[p]])
        hits += t >= 2500 and p == int(np.argmax(mean))
    np.testing.assert_allclose(pol.theta, beta, atol=0.05)
    assert hits / 500 > 0.9


def test_greedy_and_random_propensities_by_hand():
    arms = np.array([10, 11, 12, 13])
    g = make_policy("greedy").select(arms, k=2, rng=0)
    assert g.positions.tolist() == [0, 1] and g.arms.tolist() == [10, 11] and g.propensities.tolist() == [1.0, 1.0]
    r = make_policy("random").select(arms, k=3, rng=0)
    assert len(set(r.positions.tolist())) == 3
    np.testing.assert_allclose(r.propensities, [1 / 4, 1 / 3, 1 / 2])


def test_egreedy_propensities_by_hand_and_empirically():
    pol = make_policy("egreedy", estimator="arm", n_arms=4, epsilon=0.4)
    pol.update(np.array([2]), np.array([1.0]))  # arm 2 is the best estimate
    probs = pol.probabilities(np.arange(4))
    np.testing.assert_allclose(probs, [0.1, 0.1, 0.7, 0.1])
    d = pol.select(np.arange(4), k=2, rng=np.random.default_rng(5))
    first = int(d.positions[0])
    assert d.propensities[0] == pytest.approx(probs[first])
    # second slot: eps/3 to each remaining, plus 1 - eps to the best remaining
    best_rem = 2 if first != 2 else 0
    expect = 0.4 / 3 + (0.6 if int(d.positions[1]) == best_rem else 0.0)
    assert d.propensities[1] == pytest.approx(expect)
    rng = np.random.default_rng(0)
    freq = np.bincount([int(pol.select(np.arange(4), rng=rng).positions[0]) for _ in range(4000)], minlength=4) / 4000
    np.testing.assert_allclose(freq, probs, atol=0.03)


def test_softmax_probabilities_by_hand():
    pol = make_policy("softmax", estimator="arm", n_arms=2, temperature=0.5)
    pol.update(np.array([0, 1]), np.array([1.0, 0.0]))
    e = np.exp(np.array([1.0, 0.0]) / 0.5)
    np.testing.assert_allclose(pol.probabilities(np.array([0, 1])), e / e.sum())


@pytest.mark.parametrize("name,params", [("ts", dict(n_arms=3, n_propensity_samples=2000)), ("lints", dict(dim=2, n_propensity_samples=2000))])
def test_thompson_propensity_matches_selection_frequency(name, params):
    pol = make_policy(name, **params)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    pol.update(np.array([0, 1, 2, 0]), np.array([1.0, 0.0, 1.0, 0.0]), X[[0, 1, 2, 0]] if pol.contextual else None)
    ctx = X if pol.contextual else None
    rng = np.random.default_rng(0)
    picks = [pol.select(np.arange(3), ctx, rng=rng) for _ in range(3000)]
    freq = np.bincount([int(d.positions[0]) for d in picks], minlength=3) / len(picks)
    mean_prop = [np.mean([d.propensities[0] for d in picks if d.positions[0] == j]) for j in range(3)]
    np.testing.assert_allclose(mean_prop, freq, atol=0.04)
    np.testing.assert_allclose(pol.probabilities(np.arange(3), ctx, rng=1), freq, atol=0.04)


SPECS = [
    ("random", {}),
    ("greedy", {}),
    ("egreedy", dict(dim=3, epsilon=0.3, decay=0.1)),
    ("egreedy", dict(estimator="arm", n_arms=6)),
    ("softmax", dict(dim=3)),
    ("ucb1", dict(n_arms=6)),
    ("ts", dict(n_arms=6)),
    ("linucb", dict(dim=3)),
    ("linucb", dict(dim=3, mode="disjoint", n_arms=6)),
    ("linucb", dict(dim=3, mode="hybrid", shared_dim=1, n_arms=6)),
    ("lints", dict(dim=3)),
    ("lints", dict(dim=3, mode="disjoint", n_arms=6)),
]


@pytest.mark.parametrize("name,params", SPECS)
def test_state_round_trips_through_safetensors(tmp_path, name, params):
    rng = np.random.default_rng(0)
    pol = make_policy(name, **params)
    for _ in range(30):
        arms = rng.choice(6, size=4, replace=False)
        X = rng.normal(size=(4, 3))
        d = pol.select(arms, X, k=2, rng=rng)
        pol.update(d.arms, rng.random(2), X[d.positions])
    path = pol.save(tmp_path / "pol")
    assert sorted(p.name for p in path.iterdir()) == ["policy.json", "state.safetensors"]
    again = load_policy(path)
    assert type(again) is type(pol) and again.config == pol.config and again.t == pol.t == 60
    arms, X = np.arange(4), rng.normal(size=(4, 3))
    a = pol.select(arms, X, k=3, rng=np.random.default_rng(9))
    b = again.select(arms, X, k=3, rng=np.random.default_rng(9))
    assert a.positions.tolist() == b.positions.tolist()
    np.testing.assert_allclose(a.propensities, b.propensities)
    assert type(pol).load(path).config == pol.config


def test_load_refuses_a_folder_of_the_wrong_kind(tmp_path):
    from fusionrec.bandits import LinUCB

    make_policy("ts", n_arms=3).save(tmp_path / "ts")
    with pytest.raises(ModelStateError, match="not 'linucb'"):
        LinUCB.load(tmp_path / "ts")
    with pytest.raises(ModelStateError, match="no policy.json"):
        load_policy(tmp_path)


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ConfigError, match="unknown policy 'nope'; known policies: .*linucb"):
        make_policy("nope")
    lin = make_policy("linucb", dim=3)
    with pytest.raises(BanditInputError, match="context has width 2, policy 'linucb' expects 3"):
        lin.select(np.arange(4), np.zeros((4, 2)), rng=0)
    with pytest.raises(BanditInputError, match="needs contexts of width 3"):
        lin.select(np.arange(4), None, rng=0)
    with pytest.raises(BanditInputError, match="one row per arm"):
        lin.select(np.arange(4), np.zeros((3, 3)), rng=0)
    with pytest.raises(BanditInputError, match="NaN"):
        lin.update(np.arange(1), np.ones(1), np.full((1, 3), np.nan))
    with pytest.raises(BanditInputError, match=r"arm id 7 outside \[0, 5\)"):
        make_policy("ucb1", n_arms=5).select(np.array([1, 7]), rng=0)
    with pytest.raises(BanditInputError, match="explicit numpy Generator"):
        make_policy("random").select(np.arange(3))
    with pytest.raises(BanditInputError, match="rewards in \\[0, 1\\]"):
        make_policy("ts", n_arms=2).update(np.array([0]), np.array([2.0]))
    with pytest.raises(BanditInputError, match="no candidates"):
        make_policy("random").select(np.zeros(0, np.int64), rng=0)
    with pytest.raises(ConfigError, match="needs n_arms"):
        make_policy("linucb", dim=3, mode="disjoint")
    with pytest.raises(ConfigError, match="epsilon"):
        make_policy("egreedy", dim=2, epsilon=1.5)
