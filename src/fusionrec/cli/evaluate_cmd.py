"""``fusionrec evaluate --model-dir DIR``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from fusionrec.cli._common import console, metrics_table, parse_ks


def evaluate_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="A saved model folder."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset (default: the one the model was trained on)."),
    protocol: str | None = typer.Option(None, "--protocol", help="Split protocol (default: the model's)."),
    seed: int | None = typer.Option(None, "--seed", help="Split seed (default: the model's)."),
    ks: str = typer.Option("10", "--ks", help="Cut-offs, e.g. 10,20."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Re-evaluate a saved model on the test split it was trained for (full ranking)."""
    from fusionrec.evaluation.evaluator import DEFAULT_METRICS, Evaluator
    from fusionrec.experiment import EXPERIMENT_FILE, split_for_model_dir
    from fusionrec.experiment.config import DataConfig
    from fusionrec.models.base import load_model

    model = load_model(model_dir)
    data = None
    if dataset or protocol:
        rec = json.loads((model_dir / EXPERIMENT_FILE).read_text()) if (model_dir / EXPERIMENT_FILE).exists() else {}
        base = rec.get("data", {})
        data = DataConfig.model_validate({**base, **({"name": dataset} if dataset else {}), **({"protocol": protocol} if protocol else {})})
    sp, _ = split_for_model_dir(model_dir, data, seed)
    if sp.train.items != model.items_ or sp.train.users != model.users_:
        from fusionrec.errors import ModelStateError

        raise ModelStateError(f"{model_dir}: the model's user/item ids do not match this dataset")
    t0 = time.perf_counter()
    res = Evaluator(metrics=DEFAULT_METRICS, ks=parse_ks(ks)).evaluate_split(model, sp, "test")
    secs = time.perf_counter() - t0
    out = {"model": model.name, "metrics": res.metrics, "n_test_users": res.n_users, "eval_seconds": secs}
    if as_json:
        print(json.dumps(out))
        return
    cols = [f"{m}@{k}" for k in parse_ks(ks) for m in DEFAULT_METRICS]
    console.print(metrics_table(f"{model_dir} · {res.n_users} test users", [out], cols, [("eval_seconds", "eval s")]))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
