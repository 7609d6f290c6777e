"""Policy comparisons in an environment: many policies x seeds, a summary table, reward and
regret curves with bands over seeds, and an off-policy-evaluation study (bias/RMSE of each
estimator against the exact on-policy value)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.bandits import ope
from fusionrec.bandits.base import Policy, make_policy
from fusionrec.bandits.logged import log_from_environment, target_action_dist
from fusionrec.bandits.simulator import BanditEnvironment, SimulationResult, simulate
from fusionrec.errors import ConfigError

__all__ = [
    "DEFAULT_PARAMS",
    "policy_for",
    "parse_policy_spec",
    "run_policies",
    "summary_table",
    "plot_curves",
    "OPEStudy",
    "ope_study",
]

#: Defaults of each policy in an environment (context width and arm count come from it).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "linucb": {"alpha": 0.5},
    "lints": {"v": 0.1},
    "egreedy": {"epsilon": 0.1},
    "softmax": {"temperature": 0.05},
    "ucb1": {},
    "ts": {},
    "greedy": {},
    "random": {},
}


def parse_policy_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"linucb:alpha=0.3:mode=disjoint"`` -> ("linucb", {"alpha": 0.3, "mode": "disjoint"})."""
    name, *pairs = spec.strip().split(":")
    params: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"policy spec {spec!r}: expected key=value after ':', got {p!r}")
        k, v = p.split("=", 1)
        for cast in (int, float):
            try:
                params[k] = cast(v)
                break
            except ValueError:
                continue
        else:
            params[k] = v
    return name, params


def policy_for(spec: str, env: BanditEnvironment) -> Policy:
    """A fresh policy for ``env`` from a spec (name plus optional ``:key=value`` overrides)."""
    name, params = parse_policy_spec(spec)
    if name not in DEFAULT_PARAMS:
        from fusionrec.bandits.base import POLICIES

        if name not in POLICIES:
            raise ConfigError(f"unknown policy {name!r}; known policies: {', '.join(sorted(POLICIES))}")
    merged = {**DEFAULT_PARAMS.get(name, {}), **params}
    if name in ("linucb", "lints", "egreedy", "softmax") and merged.get("estimator", "linear") == "linear":
        merged.setdefault("dim", env.dim)
    if name in ("ucb1", "ts") or merged.get("mode") in ("disjoint", "hybrid") or merged.get("estimator") == "arm":
        merged.setdefault("n_arms", env.n_arms)
    return make_policy(name, **merged)


def run_policies(
    env: BanditEnvironment, specs: Sequence[str], rounds: int, seeds: Sequence[int], k: int = 1, progress=None
) -> list[SimulationResult]:
    """Every policy in every seed (a fresh policy per run); ``progress(spec, seed, result)``."""
    out = []
    for spec in specs:
        for seed in seeds:
            res = simulate(env, policy_for(spec, env), rounds, seed=int(seed), k=k)
            res = SimulationResult(spec, int(seed), res.reward, res.expected, res.oracle, res.propensity)
            out.append(res)
            if progress is not None:
                progress(spec, seed, res)
    return out


def summary_table(results: Sequence[SimulationResult]) -> pd.DataFrame:
    """Per policy: mean reward per round (realised and expected) over seeds with its spread,
    share of the oracle's expected reward, cumulative regret."""
    rows = []
    for r in results:
        rows.append(
            {
                "policy": r.policy,
                "seed": r.seed,
                "rounds": len(r.reward),
                "reward": r.reward.mean(),
                "expected": r.expected.mean(),
                "oracle": r.oracle.mean(),
                "cum_reward": r.reward.sum(),
                "cum_regret": r.regret.sum(),
            }
        )
    df = pd.DataFrame(rows)
    g = df.groupby("policy", sort=False)
    out = pd.DataFrame(
        {
            "seeds": g.size(),
            "rounds": g["rounds"].first(),
            "reward_per_round": g["reward"].mean(),
            "reward_sd": g["reward"].std(ddof=1),
            "expected_per_round": g["expected"].mean(),
            "pct_of_oracle": 100 * g["expected"].mean() / g["oracle"].mean(),
            "cum_reward": g["cum_reward"].mean(),
            "cum_regret": g["cum_regret"].mean(),
            "cum_regret_sd": g["cum_regret"].std(ddof=1),
        }
    )
    return out.sort_values("expected_per_round", ascending=False).reset_index()


def plot_curves(results: Sequence[SimulationResult], out_dir: str | Path, title: str = "") -> list[Path]:
    """``reward.png`` (cumulative reward, oracle dashed) and ``regret.png`` (cumulative
    expected regret), mean over seeds with a +-1 sd band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by: dict[str, list[SimulationResult]] = {}
    for r in results:
        by.setdefault(r.policy, []).append(r)
    paths = []
    for what, ylabel in (("reward", "cumulative reward"), ("regret", "cumulative regret (expected)")):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for name, rs in by.items():
            curves = np.stack([np.cumsum(r.reward if what == "reward" else r.regret) for r in rs])
            x = np.arange(1, curves.shape[1] + 1)
            m, s = curves.mean(0), curves.std(0)
            step = max(1, len(x) // 1000)
            ax.plot(x[::step], m[::step], label=f"{name} (n={len(rs)})")
            ax.fill_between(x[::step], (m - s)[::step], (m + s)[::step], alpha=0.25)
        if what == "reward" and results:
            orc = np.stack([np.cumsum(r.oracle) for r in results]).mean(0)
            ax.plot(np.arange(1, len(orc) + 1), orc, "k--", lw=1, label="oracle (expected)")
        ax.set_xlabel("round")
        ax.set_ylabel(ylabel)
        ax.set_title(title or ylabel)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        p = out_dir / f"{what}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths


@dataclass(frozen=True)
class OPEStudy:
    table: pd.DataFrame
    """One row per (target, estimator): true value, mean estimate, bias, RMSE, CI coverage."""
    runs: pd.DataFrame
    """Every (seed, target, estimator) estimate."""


def ope_study(
    env: BanditEnvironment,
    targets: dict[str, Policy],
    logger: Policy,
    n_rounds: int,
    seeds: Sequence[int],
    alpha: float = 0.05,
) -> OPEStudy:
    """Log ``n_rounds`` with ``logger`` per seed, estimate each target with every estimator
    (DM/DR with a ridge reward model fitted on that log) and compare with the target's exact
    value in the environment (its action distribution times the true reward probabilities)."""
    rows_all = np.arange(len(env.probs)) if env.order is None else env.order
    truth = {}
    for name, pol in targets.items():
        dist = np.stack([pol.probabilities(env.candidates[s], env.contexts[s] if pol.contextual else None, np.random.default_rng(0)) for s in rows_all])
        truth[name] = float((dist * env.probs[rows_all]).sum(axis=1).mean())
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(int(seed))
        log, _ = log_from_environment(env, logger, n_rounds, rng)
        q_hat = ope.ridge_reward_model(log.contexts[np.arange(log.n_rounds), log.action], log.reward, log.contexts)
        for name, pol in targets.items():
            ad = target_action_dist(pol, log, rng)
            for est in ope.estimate_all(log.reward, log.action, log.pscore, ad, q_hat, alpha=alpha):
                runs.append(
                    {
                        "seed": int(seed),
                        "target": name,
                        "estimator": est.estimator,
                        "estimate": est.value,
                        "lower": est.lower,
                        "upper": est.upper,
                        "n": est.n,
                        "true": truth[name],
                    }
                )
    df = pd.DataFrame(runs)
    df["err"] = df["estimate"] - df["true"]
    df["covered"] = (df["lower"] <= df["true"]) & (df["true"] <= df["upper"])
    g = df.groupby(["target", "estimator"], sort=False)
    table = pd.DataFrame(
        {
            "true": g["true"].first(),
            "mean_estimate": g["estimate"].mean(),
            "bias": g["err"].mean(),
            "rmse": np.sqrt(g["err"].apply(lambda e: float(np.mean(np.square(e))))),
            "ci_coverage": g["covered"].mean(),
            "seeds": g.size(),
        }
    ).reset_index()
    return OPEStudy(table, df)
