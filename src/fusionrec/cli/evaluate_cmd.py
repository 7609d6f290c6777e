"""``fusionrec evaluate --model-dir DIR``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from fusionrec.cli._common import console, metrics_table, parse_ks, parse_list


def evaluate_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="A saved model folder."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset (default: the one the model was trained on)."),
    protocol: str | None = typer.Option(None, "--protocol", help="Split protocol (default: the model's)."),
    seed: int | None = typer.Option(None, "--seed", help="Split seed (default: the model's)."),
    ks: str = typer.Option("10", "--ks", help="Cut-offs, e.g. 10,20."),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Comma-separated metric names (default: recall,ndcg,mrr,hit,precision); "
        "e.g. ndcg,itemcoverage,giniindex,ild,novelty,serendipity,calibration,exposure,ndcg_gap,auc (see docs/trust.md)."
    ),
    rerank: str | None = typer.Option(
        None, "--rerank", help="Re-rank each user's top candidates first: mmr:W, calibrated:W or fair:P (optionally :POOL)."
    ),
    sampled: str | None = typer.Option(
        None, "--sampled", help="Sampled protocol instead of full ranking: uni100 or pop100 (any uniN/popN, as RecBole's mode); labelled in the output."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Re-evaluate a saved model on the test split it was trained for (full ranking)."""
    from fusionrec.evaluation.evaluator import DEFAULT_METRICS, Evaluator
    from fusionrec.evaluation.registry import validate_metric_names
    from fusionrec.experiment import EXPERIMENT_FILE, split_for_model_dir
    from fusionrec.experiment.config import DataConfig
    from fusionrec.models.base import load_model

    names = validate_metric_names(parse_list(metrics)) if metrics else list(DEFAULT_METRICS)
    if rerank is not None:
        from fusionrec.rerank.spec import parse_rerank_spec

        parse_rerank_spec(rerank)  # a bad spec fails before the model loads
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
    reranker = None
    if rerank is not None:
        from fusionrec.rerank import make_reranker

        reranker = make_reranker(rerank, sp.train, model)
    try:
        evaluator = Evaluator(metrics=names, ks=parse_ks(ks), reranker=reranker, protocol=sampled or "full", seed=2020 if seed is None else seed)
        res = evaluator.evaluate_split(model, sp, "test")
    except ValueError as e:  # a metric this model or dataset cannot give (ratings, genres, ...)
        from fusionrec.errors import ConfigError

        raise ConfigError(str(e)) from None
    secs = time.perf_counter() - t0
    out = {"model": model.name, "metrics": res.metrics, "n_test_users": res.n_users, "eval_seconds": secs, "eval_protocol": res.protocol}
    if reranker is not None:
        out["rerank"] = reranker.spec.text
    if as_json:
        print(json.dumps(out))
        return
    title = f"{model_dir} · {res.n_users} test users" + (f" · rerank {reranker.spec.text}" if reranker else "")
    if res.sampled:
        title += f" · SAMPLED {res.protocol} evaluation (not comparable to full ranking)"
    cols = list(res.metrics)
    if len(cols) <= 8:
        console.print(metrics_table(title, [out], cols, [("eval_seconds", "eval s")]))
        return
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric", style="bold")
    t.add_column(model.name, justify="right")
    for c in cols:
        t.add_row(c, f"{res.metrics[c]:.4f}")
    t.add_row("eval s", f"{secs:.2f}")
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
