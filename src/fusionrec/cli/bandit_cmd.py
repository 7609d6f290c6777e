"""``fusionrec bandit``: simulate policies on a dataset, log feedback, estimate a policy
off-line, and fold the service's feedback into saved bandit state."""

from __future__ import annotations

import json
from pathlib import Path

import typer

bandit_app = typer.Typer(help="Contextual bandits: simulate, log, off-policy evaluation, update from feedback.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bandit_app, name="bandit")


def _env(dataset: str, environment: str, candidates: int, seed: int):
    from fusionrec.bandits.replay import time_replay
    from fusionrec.bandits.simulator import semi_synthetic
    from fusionrec.data import load_dataset
    from fusionrec.errors import ConfigError

    ds = load_dataset(dataset)
    if environment == "semi-synthetic":
        return semi_synthetic(ds, n_candidates=candidates, seed=seed)
    if environment == "replay":
        return time_replay(ds, n_candidates=candidates, seed=seed)
    raise ConfigError(f"unknown environment {environment!r}; expected semi-synthetic or replay")


def _markdown(df) -> str:
    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


@bandit_app.command("simulate")
def simulate_cmd(
    dataset: str = typer.Option("ml-100k", "--dataset", help="Dataset name or folder (needs ratings; replay needs timestamps)."),
    policies: str = typer.Option(
        "linucb,lints,egreedy,ts,greedy,random",
        "--policies",
        help="Comma-separated policy specs; a spec may override parameters: linucb:alpha=0.3:mode=disjoint.",
    ),
    rounds: int = typer.Option(10000, "--rounds", min=1, help="Rounds per run (replay: at most the logged rounds)."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds of the policies' randomness."),
    environment: str = typer.Option("semi-synthetic", "--environment", help="semi-synthetic (fitted model, calibrated rewards) or replay (time-ordered real ratings)."),
    candidates: int = typer.Option(20, "--candidates", min=2, help="Candidates per round (the model's top-N)."),
    k: int = typer.Option(1, "--k", min=1, help="Slate size."),
    env_seed: int = typer.Option(0, "--env-seed", help="Seed of the split and of the model fit behind the environment."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Run folder (default runs/<time>-bandit-simulate)."),
    save_policies: bool = typer.Option(False, "--save-policies", help="Save each policy's state after the first seed under OUTPUT/policies/."),
) -> None:
    """Compare policies: writes table.csv/.md, reward.png, regret.png, environment.json."""
    import time

    from fusionrec.bandits.study import plot_curves, policy_for, run_policies, summary_table
    from fusionrec.cli._common import console, new_run_dir, parse_list

    specs = parse_list(policies)
    seed_list = [int(s) for s in parse_list(seeds)]
    run_dir = new_run_dir("bandit-simulate", output)
    t0 = time.perf_counter()
    env = _env(dataset, environment, candidates, env_seed)
    for spec in specs:  # fail on a bad spec before any long run
        policy_for(spec, env)
    console.print(f"environment: {json.dumps(env.info)} ({time.perf_counter() - t0:.1f}s)", highlight=False)
    n = rounds if env.order is None else min(rounds, len(env.order))
    res = run_policies(
        env, specs, n, seed_list, k=k,
        progress=lambda s, sd, r: console.print(f"  {s} seed {sd}: {r.expected.mean():.4f} per round", highlight=False),
    )
    table = summary_table(res)
    table.to_csv(run_dir / "table.csv", index=False)
    cols = ["policy", "seeds", "rounds", "reward_per_round", "reward_sd", "pct_of_oracle", "cum_reward", "cum_regret"]
    (run_dir / "table.md").write_text(_markdown(table[cols]))
    (run_dir / "environment.json").write_text(json.dumps(env.info, indent=2))
    plot_curves(res, run_dir, title=f"{dataset} {environment}, {n} rounds, {len(seed_list)} seeds")
    if save_policies:
        from fusionrec.bandits.simulator import simulate

        for spec in specs:
            pol = policy_for(spec, env)
            simulate(env, pol, n, seed=seed_list[0], k=k)
            pol.save(run_dir / "policies" / spec.split(":")[0])
    console.print(table[cols].to_string(index=False), highlight=False, soft_wrap=True)
    oracle = sum(float(r.oracle.mean()) for r in res) / len(res)
    console.print(f"oracle expected reward per round: {oracle:.4f}; wrote {run_dir}", highlight=False)


@bandit_app.command("make-log")
def make_log_cmd(
    out: Path = typer.Option(..., "--out", help="The .npz log to write."),
    dataset: str = typer.Option("ml-100k", "--dataset"),
    logger: str = typer.Option("random", "--logger", help="Logging policy spec (fixed, never updated): random, egreedy:estimator=arm:epsilon=0.5, ..."),
    rounds: int = typer.Option(10000, "--rounds", min=1),
    environment: str = typer.Option("semi-synthetic", "--environment"),
    candidates: int = typer.Option(20, "--candidates", min=2),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Log bandit feedback of a fixed logging policy in the simulator (for ``bandit ope``)."""
    import numpy as np

    from fusionrec.bandits.logged import log_from_environment
    from fusionrec.bandits.study import policy_for
    from fusionrec.cli._common import console

    env = _env(dataset, environment, candidates, seed)
    log, _ = log_from_environment(env, policy_for(logger, env), rounds, np.random.default_rng(seed))
    log.save(out)
    console.print(f"wrote {log.n_rounds} rounds ({candidates} candidates, context width {env.dim}) to {out}", highlight=False)


@bandit_app.command("ope")
def ope_cmd(
    log_file: Path = typer.Option(..., "--log", help="Logged feedback (.npz from make-log or the service export)."),
    policy: str = typer.Option(..., "--policy", help="Target: a saved policy folder, or a policy spec (greedy, random, ...)."),
    alpha: float = typer.Option(0.05, "--alpha", help="1 - confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of Thompson-sampling propensity draws."),
    reg: float = typer.Option(1.0, "--reg", help="Ridge penalty of the DM/DR reward model."),
) -> None:
    """Estimate a target policy's value on a log: replay, IPS, SNIPS, DM, DR with intervals."""
    import numpy as np

    from fusionrec.bandits import ope
    from fusionrec.bandits.base import load_policy, make_policy
    from fusionrec.bandits.logged import load_log, target_action_dist
    from fusionrec.bandits.study import DEFAULT_PARAMS, parse_policy_spec
    from fusionrec.cli._common import console

    log = load_log(log_file)
    if Path(policy).is_dir():
        target = load_policy(policy)
    else:
        name, params = parse_policy_spec(policy)
        params = {**DEFAULT_PARAMS.get(name, {}), **params}
        if name in ("linucb", "lints", "egreedy", "softmax") and log.contexts is not None:
            params.setdefault("dim", log.contexts.shape[2])
        target = make_policy(name, **params)
    rng = np.random.default_rng(seed)
    ad = target_action_dist(target, log, rng)
    q_hat = None
    if log.contexts is not None:
        rows = np.arange(log.n_rounds)
        q_hat = ope.ridge_reward_model(log.contexts[rows, log.action], log.reward, log.contexts, reg=reg)
    ests = ope.estimate_all(log.reward, log.action, log.pscore, ad, q_hat, alpha=alpha)
    console.print(f"target {target.name} on {log.n_rounds} logged rounds (logged mean reward {log.reward.mean():.4f})", highlight=False)
    console.print(f"{'estimator':<10}{'value':>10}{'lower':>10}{'upper':>10}{'stderr':>10}{'n':>8}", highlight=False)
    for e in ests:
        console.print(f"{e.estimator:<10}{e.value:>10.4f}{e.lower:>10.4f}{e.upper:>10.4f}{e.stderr:>10.4f}{e.n:>8d}", highlight=False)
    if not any(e.estimator == "replay" for e in ests):
        console.print("(replay left out: the target is not deterministic on these rounds)", highlight=False)


@bandit_app.command("update")
def update_cmd(
    events: str = typer.Option(..., "--events", help="SQLAlchemy URL (or SQLite file path) of the service's event store."),
    model_dir: Path = typer.Option(..., "--model-dir", help="The served model folder (contexts are recomputed from it)."),
    out: Path | None = typer.Option(None, "--out", help="Folder of the policy states (default MODEL_DIR/bandits, which the service loads)."),
    policies: str | None = typer.Option(None, "--policies", help="Comma-separated policies to update (default: every policy with stored feedback)."),
) -> None:
    """Fold the service's stored bandit feedback (propensity, reward) into saved policy state."""
    from fusionrec.cli._common import console, parse_list
    from fusionrec.models.base import load_model
    from fusionrec.serving.bandit_state import fold_events

    url = events if "://" in events else f"sqlite:///{Path(events).resolve()}"
    model = load_model(model_dir)
    folder = out or Path(model_dir) / "bandits"
    done = fold_events(url, model, folder, parse_list(policies) if policies else None)
    if not done:
        console.print("no bandit feedback stored yet; nothing to update", highlight=False)
    for name, n in done.items():
        console.print(f"{name}: folded {n} new feedback rows -> {folder / name}", highlight=False)
