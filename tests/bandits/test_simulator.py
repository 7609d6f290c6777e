"""Environments and the simulation loop: a linear environment, the semi-synthetic builder and
time-ordered replay on a small rated dataset, the OPE study, logs on disk."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.bandits import BanditInputError, make_policy
from fusionrec.bandits.contexts import ContextBuilder, model_vectors
from fusionrec.bandits.logged import BanditLog, load_log, log_from_environment
from fusionrec.bandits.replay import time_replay
from fusionrec.bandits.simulator import (
    BanditEnvironment,
    bpr_params,
    fit_logistic,
    semi_synthetic,
    simulate,
)
from fusionrec.bandits.study import (
    ope_study,
    parse_policy_spec,
    plot_curves,
    policy_for,
    run_policies,
    summary_table,
)
from fusionrec.data import make_synthetic
from fusionrec.errors import ConfigError, DataFormatError


@pytest.fixture(scope="module")
def rated():
    return make_synthetic(n_users=120, n_items=60, n_interactions_per_user=20, kg=False, modalities=())


def test_linucb_beats_random_and_greedy_on_a_linear_environment(linear_env):
    res = run_policies(linear_env, ["linucb", "random", "greedy"], 3000, [0, 1])
    tab = summary_table(res).set_index("policy")
    assert tab.loc["linucb", "expected_per_round"] > tab.loc["random", "expected_per_round"] + 0.05
    assert tab.loc["linucb", "pct_of_oracle"] > 95
    r = res[0]
    assert r.oracle.mean() == pytest.approx(linear_env.oracle_value(), rel=0.02)
    assert np.all(r.regret >= -1e-12)


def test_simulation_is_reproducible_under_a_seed(linear_env):
    a = simulate(linear_env, policy_for("lints", linear_env), 300, seed=5)
    b = simulate(linear_env, policy_for("lints", linear_env), 300, seed=5)
    np.testing.assert_array_equal(a.reward, b.reward)
    np.testing.assert_array_equal(a.propensity, b.propensity)


def test_slates_score_every_slot(linear_env):
    r = simulate(linear_env, policy_for("random", linear_env), 500, seed=0, k=3)
    assert r.reward.max() <= 3 and r.expected.mean() == pytest.approx(3 * linear_env.probs.mean(), rel=0.1)


def test_policy_specs_and_errors(linear_env):
    assert parse_policy_spec("linucb:alpha=0.3:mode=disjoint") == ("linucb", {"alpha": 0.3, "mode": "disjoint"})
    assert policy_for("linucb:mode=disjoint", linear_env).n_arms == 8
    with pytest.raises(ConfigError, match="unknown policy 'zzz'"):
        policy_for("zzz", linear_env)
    with pytest.raises(ConfigError, match="key=value"):
        parse_policy_spec("linucb:alpha")
    with pytest.raises(BanditInputError, match="context has width 4, policy 'linucb' expects 3"):
        simulate(linear_env, make_policy("linucb", dim=3), 10, seed=0)


def test_fit_logistic_recovers_known_weights():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(20000, 2)), np.ones(20000)]
    w = np.array([1.0, -2.0, 0.5])
    y = rng.random(20000) < 1 / (1 + np.exp(-X @ w))
    np.testing.assert_allclose(fit_logistic(X, y, l2=0.0), w, atol=0.08)


def test_semi_synthetic_environment_from_a_fitted_model(rated):
    env = semi_synthetic(rated, n_candidates=10, seed=0, model_params=bpr_params(8, 5))
    assert env.candidates.shape == (120, 10) and env.contexts.shape == (120, 10, 8 + 2 + 1)
    assert np.all((env.probs > 0) & (env.probs < 1))
    info = env.info
    assert info["greedy_value"] <= info["oracle_value"] and 0 < info["calibration_auc_test"] <= 1
    np.testing.assert_allclose(env.contexts[..., -1], 1.0)  # the bias column


def test_time_replay_orders_rounds_in_time(rated):
    env = time_replay(rated, n_candidates=4, seed=0, model_params=bpr_params(8, 5))
    assert set(np.unique(env.probs)) <= {0.0, 1.0}
    assert env.order is not None and len(env.rows(10**6, np.random.default_rng(0))) == len(env.order)
    r = simulate(env, policy_for("greedy", env), 10**6, seed=0)
    assert len(r.reward) == len(env.order)
    np.testing.assert_allclose(r.expected, r.reward)  # rewards are the observed ratings
    with pytest.raises(ConfigError, match="lower n_candidates"):
        time_replay(rated, n_candidates=500, seed=0, model_params=bpr_params(8, 1))


def test_contexts_from_model_and_dataset(rated):
    from fusionrec.models.classic.bpr import BPR
    from fusionrec.models.classic.ease import EASE

    m = BPR(**bpr_params(4, 1)).fit(rated, seed=0)
    U, V = model_vectors(m)
    b = ContextBuilder.from_model(m, kind="concat")
    X = b(3, np.array([1, 2]))
    np.testing.assert_allclose(X, np.c_[np.tile(U[3], (2, 1)), V[[1, 2]], np.ones(2)])
    assert b.dim == 9
    with pytest.raises(ConfigError, match="exposes no user and item vectors"):
        model_vectors(EASE().fit(rated, seed=0))
    with pytest.raises(ConfigError, match="no item embedding 'text'"):
        ContextBuilder.from_dataset(rated)


def test_ope_study_on_a_linear_environment(linear_env):
    lin = policy_for("linucb", linear_env)
    simulate(linear_env, lin, 2000, seed=3)
    st = ope_study(linear_env, {"greedy": policy_for("greedy", linear_env), "linucb": lin}, policy_for("random", linear_env), 2000, range(8))
    t = st.table.set_index(["target", "estimator"])
    for target in ("greedy", "linucb"):
        for est in ("replay", "ips", "snips", "dr"):
            assert abs(t.loc[(target, est), "bias"]) < 3 * t.loc[(target, est), "rmse"] / np.sqrt(8) + 0.01


def test_logs_round_trip_and_bad_files(tmp_path, linear_env):
    log, _ = log_from_environment(linear_env, policy_for("random", linear_env), 100, np.random.default_rng(0))
    np.testing.assert_allclose(log.pscore, 1 / 8)
    back = load_log(log.save(tmp_path / "log.npz"))
    np.testing.assert_array_equal(back.action, log.action)
    np.testing.assert_array_equal(back.contexts, log.contexts)
    np.savez(tmp_path / "bad.npz", action=np.zeros(3, int))
    with pytest.raises(DataFormatError, match="lacks arrays"):
        load_log(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataFormatError, match="not a readable"):
        load_log(tmp_path / "junk.npz")
    with pytest.raises(BanditInputError, match="propensity must lie in"):
        BanditLog(log.candidates, log.action, log.reward, np.zeros(100))


def test_plots_are_written(tmp_path, linear_env):
    res = run_policies(linear_env, ["linucb", "random"], 200, [0, 1])
    paths = plot_curves(res, tmp_path)
    assert [p.name for p in paths] == ["reward.png", "regret.png"] and all(p.stat().st_size > 1000 for p in paths)


def test_bad_environment_arrays_are_refused():
    with pytest.raises(BanditInputError, match="disagree"):
        BanditEnvironment(np.zeros((2, 3), int), np.zeros((2, 4, 1)), np.zeros((2, 3)), 3)
    with pytest.raises(BanditInputError, match=r"in \[0, 1\]"):
        BanditEnvironment(np.zeros((2, 3), int), np.zeros((2, 3, 1)), np.full((2, 3), 2.0), 3)
