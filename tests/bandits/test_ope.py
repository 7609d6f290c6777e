"""Off-policy estimators: hand-computed values, unbiasedness over seeds, replay under uniform
logging, the obp agreement to 1e-9, and the errors on bad logs."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.bandits import BanditInputError, ope

# 4 rounds, 2 actions. Target: action 0 always. Logged actions 0,1,0,1 with pscore 0.5,0.25,0.8,0.5.
R = np.array([1.0, 0.0, 0.0, 1.0])
A = np.array([0, 1, 0, 1])
PS = np.array([0.5, 0.25, 0.8, 0.5])
AD = np.zeros((4, 2, 1))
AD[:, 0, 0] = 1.0
Q = np.array([[0.6, 0.2], [0.5, 0.5], [0.4, 0.1], [0.9, 0.3]])[:, :, None]


def test_estimators_by_hand():
    # IPS: (1/0.5*1 + 0 + 1/0.8*0 + 0) / 4 = 0.5
    assert ope.ips(R, A, PS, AD).value == pytest.approx(0.5)
    # SNIPS: weights 2, 0, 1.25, 0 -> (2*1 + 1.25*0) / 3.25
    assert ope.snips(R, A, PS, AD).value == pytest.approx(2 / 3.25)
    # replay: matched rounds 0 and 2, rewards 1 and 0 -> 0.5
    est = ope.replay(R, A, AD)
    assert est.value == pytest.approx(0.5) and est.n == 2
    # DM: mean of q(x, 0) = (0.6+0.5+0.4+0.9)/4
    assert ope.direct_method(A, AD, Q).value == pytest.approx(0.6)
    # DR: DM + w*(r - q(x,a)): round 0: 2*(1-0.6)=0.8; round 2: 1.25*(0-0.4)=-0.5 -> 0.6 + 0.3/4
    assert ope.doubly_robust(R, A, PS, AD, Q).value == pytest.approx(0.6 + 0.3 / 4)
    names = [e.estimator for e in ope.estimate_all(R, A, PS, AD, Q)]
    assert names == ["replay", "ips", "snips", "dm", "dr"]
    ips = ope.ips(R, A, PS, AD)
    v = R * AD[np.arange(4), A, 0] / PS
    se = v.std(ddof=1) / 2
    assert ips.stderr == pytest.approx(se) and ips.lower == pytest.approx(0.5 - 1.959963985 * se)


def _synthetic_log(rng: np.random.Generator, n: int, n_actions: int = 5):
    """Logged rounds with known propensities: context-dependent reward table and logging policy."""
    ctx = rng.integers(0, 10, size=n)
    q = np.random.default_rng(123).random((10, n_actions))  # true reward probability per (context, action)
    logging = np.random.default_rng(321).dirichlet(np.ones(n_actions), size=10) * 0.9 + 0.1 / n_actions
    u = rng.random(n)[:, None]
    action = (u > np.cumsum(logging[ctx], axis=1)).sum(axis=1)
    reward = (rng.random(n) < q[ctx, action]).astype(float)
    target = np.argmax(q, axis=1)  # a deterministic target
    ad = np.zeros((n, n_actions, 1))
    ad[np.arange(n), target[ctx], 0] = 1.0
    true_value = float(q[np.arange(10), target].mean())  # contexts are uniform
    return reward, action, logging[ctx, action], ad, true_value


def test_ips_is_unbiased_over_seeds_and_its_interval_covers():
    ests, covered = [], []
    for seed in range(300):
        r, a, ps, ad, truth = _synthetic_log(np.random.default_rng(seed), 400)
        e = ope.ips(r, a, ps, ad)
        ests.append(e.value)
        covered.append(e.lower <= truth <= e.upper)
    ests = np.asarray(ests)
    half = 3 * ests.std(ddof=1) / np.sqrt(len(ests))
    assert abs(ests.mean() - truth) < half, (ests.mean(), truth, half)
    assert 0.9 <= np.mean(covered) <= 0.99


def test_replay_equals_the_on_policy_reward_under_uniform_logging():
    n_actions, vals = 4, []
    q = np.array([0.1, 0.7, 0.4, 0.2])
    for seed in range(100):
        rng = np.random.default_rng(seed)
        a = rng.integers(0, n_actions, size=2000)  # uniform logging
        r = (rng.random(2000) < q[a]).astype(float)
        ad = np.zeros((2000, n_actions, 1))
        ad[:, 1, 0] = 1.0  # target: always action 1, on-policy value 0.7
        vals.append(ope.replay(r, a, ad).value)
        # with uniform logging IPS on the same log estimates the same value
        assert ope.ips(r, a, np.full(2000, 0.25), ad).value == pytest.approx(vals[-1] * np.mean(a == 1) * 4)
    vals = np.asarray(vals)
    assert abs(vals.mean() - 0.7) < 3 * vals.std(ddof=1) / 10


def test_bootstrap_interval_contains_the_mean():
    x = np.random.default_rng(0).random(500)
    lo, hi = ope.bootstrap_interval(x, np.random.default_rng(1), 500)
    assert lo < x.mean() < hi and hi - lo < 0.1


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1, np.nan])
def test_bad_propensities_are_refused(bad):
    ps = PS.copy()
    ps[2] = bad
    with pytest.raises(BanditInputError, match=r"propensity must lie in \(0, 1\]: round 2"):
        ope.ips(R, A, ps, AD)


def test_other_bad_logs_are_refused():
    with pytest.raises(BanditInputError, match="sum to 1"):
        ope.ips(R, A, PS, AD * 0.5)
    with pytest.raises(BanditInputError, match=r"action ids must lie in \[0, 2\)"):
        ope.ips(R, np.array([0, 1, 2, 0]), PS, AD)
    with pytest.raises(BanditInputError, match="shape \\(n_rounds, n_actions, len_list\\)"):
        ope.ips(R, A, PS, AD[:, :, 0])
    with pytest.raises(BanditInputError, match="q_hat must have the shape"):
        ope.doubly_robust(R, A, PS, AD, Q[:, :1])
    with pytest.raises(BanditInputError, match="unknown estimator 'xx'"):
        ope.estimate_all(R, A, PS, AD, estimators=("xx",))


def test_same_numbers_as_open_bandit_pipeline():
    obp_ope = pytest.importorskip("obp.ope")
    rng = np.random.default_rng(0)
    n, n_actions, len_list = 3000, 6, 2
    action = rng.integers(0, n_actions, size=n)
    position = rng.integers(0, len_list, size=n)
    pscore = rng.uniform(0.05, 1.0, size=n)
    reward = rng.binomial(1, 0.4, size=n).astype(float)
    stoch = rng.dirichlet(np.ones(n_actions), size=(n, len_list)).transpose(0, 2, 1)
    q_hat = rng.random((n, n_actions, len_list))
    det = np.zeros((n, n_actions, len_list))
    for p in range(len_list):
        det[np.arange(n), rng.integers(0, n_actions, size=n), p] = 1.0
    for ad in (stoch, det):
        kw = dict(reward=reward, action=action, pscore=pscore, action_dist=ad, position=position)
        pairs = [
            (ope.ips(reward, action, pscore, ad, position).value, obp_ope.InverseProbabilityWeighting().estimate_policy_value(**kw)),
            (ope.snips(reward, action, pscore, ad, position).value, obp_ope.SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw)),
            (ope.direct_method(action, ad, q_hat, position).value, obp_ope.DirectMethod().estimate_policy_value(action_dist=ad, estimated_rewards_by_reg_model=q_hat, position=position)),
            (ope.doubly_robust(reward, action, pscore, ad, q_hat, position).value, obp_ope.DoublyRobust().estimate_policy_value(**kw, estimated_rewards_by_reg_model=q_hat)),
        ]
        if ad is det:
            pairs.append((ope.replay(reward, action, ad, position).value, obp_ope.ReplayMethod().estimate_policy_value(reward=reward, action=action, action_dist=ad, position=position)))
        for ours, theirs in pairs:
            assert abs(ours - float(theirs)) < 1e-9
