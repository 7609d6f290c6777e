"""``fusionrec robustness attack``: a shilling attack on a model, with and without a defence."""

from __future__ import annotations

import json
from pathlib import Path

import typer

robustness_app = typer.Typer(help="Data-poisoning (shilling) attacks and defences.", no_args_is_help=True)


@robustness_app.command("attack")
def attack_cmd(
    model_dir: Path | None = typer.Option(None, "--model-dir", help="A saved model folder: its model and params are refitted on its split."),
    config: Path | None = typer.Option(None, "--config", "-c", help="An experiment config (data, model, seed) instead of --model-dir."),
    attack: str = typer.Option("bandwagon", "--attack", help="random, average or bandwagon."),
    targets: int = typer.Option(5, "--targets", min=1, help="Target items pushed, drawn from the long tail."),
    fake_users: int = typer.Option(50, "--fake-users", min=1, help="Fake profiles injected (ml-100k: 50 is 5% of the users)."),
    filler: int = typer.Option(40, "--filler", min=0, help="Filler items per fake profile."),
    defence: str = typer.Option("none", "--defence", help="none, apr (BPR-style models) or detector."),
    apr_eps: float = typer.Option(0.05, "--apr-eps", help="APR perturbation size (with --defence apr)."),
    threshold: float = typer.Option(8.0, "--threshold", help="Detector threshold (with --defence detector)."),
    target_quantiles: str = typer.Option("0.5,0.8", "--target-quantiles", help="Popularity-rank quantiles the targets are drawn between (0 = least popular)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the split, the targets and the attack (default: the model's or config's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Fit the model on clean data and on data poisoned by fake profiles (with the defence), and
    print overall NDCG@10 and the targets' HR@10/50 before and after."""
    import numpy as np
    from rich.table import Table

    from fusionrec.cli._common import console
    from fusionrec.errors import ConfigError
    from fusionrec.robustness.poisoning import pick_targets
    from fusionrec.robustness.study import default_attack, run_attack

    if (model_dir is None) == (config is None):
        raise ConfigError("pass exactly one of --model-dir DIR or -c CONFIG")
    if model_dir is not None:
        from fusionrec.experiment import split_for_model_dir
        from fusionrec.models.base import load_model

        m = load_model(model_dir)
        name, params = m.name, m.config.model_dump()
        sp, rec = split_for_model_dir(model_dir, None, seed)
        seed = seed if seed is not None else int(rec.get("seed", 2020))
    else:
        from fusionrec.experiment.config import load_config
        from fusionrec.experiment.runner import prepare
        from fusionrec.models.registry import get_model

        cfg = load_config(config)
        seed = seed if seed is not None else cfg.seed
        name = cfg.model.name
        fields = get_model(name).Config.model_fields
        params = {**{k: v for k, v in cfg.train.items() if k in fields}, **cfg.model.params}
        sp = prepare(cfg.data, seed).split
    try:
        lo, hi = (float(x) for x in target_quantiles.split(","))
    except ValueError:
        raise ConfigError(f"--target-quantiles must be two numbers like 0.5,0.8, not {target_quantiles!r}") from None
    tg = pick_targets(sp.train, targets, np.random.default_rng(seed), quantile=(lo, hi))
    att = default_attack(attack, tg, fake_users, filler)
    exclude = (sp.train, sp.valid)
    kw = {"seed": seed, "apr_eps": apr_eps, "detector_threshold": threshold}
    rows = [run_attack(name, params, sp.train, sp.test, exclude, tg, None, "none", **kw),
            run_attack(name, params, sp.train, sp.test, exclude, tg, att, "none", **kw)]
    if defence != "none":
        rows.append(run_attack(name, params, sp.train, sp.test, exclude, tg, att, defence, **kw))  # type: ignore[arg-type]
    out = {"model": name, "targets": list(tg), "attack": att.model_dump(mode="json"), "rows": [r.as_dict() for r in rows]}
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    console.print(f"{name}: {attack} attack, {fake_users} fake users x ({len(tg)} targets + {filler} filler); targets {', '.join(tg)}", highlight=False)
    table = Table("attack", "defence", "NDCG@10", "target HR@10", "target HR@50", "detector P / R", "users removed")
    for r in rows:
        det = "—" if r.det_precision is None else f"{r.det_precision:.2f} / {r.det_recall:.2f}"
        table.add_row(r.attack, r.defence, f"{r.ndcg10:.4f}", f"{r.target_hr10:.4f}", f"{r.target_hr50:.4f}", det, str(r.removed_users))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(robustness_app, name="robustness")
