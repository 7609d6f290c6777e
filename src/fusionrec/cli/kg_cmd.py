"""``fusionrec ablation`` (ID-only vs +text vs +KG vs +text+KG on one split) and ``fusionrec kge``
(train TransE/TransR alone and report link prediction). The work is ``fusionrec.experiment.ablation``.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from fusionrec.cli._common import console, new_run_dir, parse_list
from fusionrec.experiment.ablation import VARIANTS, run_ablation, write_ablation_report

__all__ = ["register"]


def ablation_cmd(
    dataset: str = typer.Option(
        "ml-100k", "--dataset", "-d", help="Dataset name (ml-100k) or path."
    ),
    variants: str = typer.Option(
        "id,text,kg,text+kg", "--variants", help=f"Comma-separated, from: {', '.join(VARIANTS)}."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Report folder (default runs/<time>-ablation)."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Maximum epochs per variant (default: each model's own)."
    ),
    patience: int | None = typer.Option(
        None,
        "--patience",
        min=0,
        help="Early-stopping patience on valid NDCG@10 (default: each model's own).",
    ),
    seed: int = typer.Option(2020, "--seed", help="Split and training seed."),
    seeds: str | None = typer.Option(
        None,
        "--seeds",
        help="Several split seeds, e.g. 2020,1,2: the table shows the mean and each seed.",
    ),
    threads: int = typer.Option(
        1,
        "--threads",
        min=1,
        help="torch intra-op threads (1 is fastest for these small models on a busy CPU).",
    ),
) -> None:
    """Train ID-only, +text, +KG and +text+KG variants on one split (or several); write a table
    and a bar chart."""
    from fusionrec.data import load_dataset
    from fusionrec.experiment import RunOptions

    ds = load_dataset(dataset)
    out = new_run_dir("ablation", output)
    report = run_ablation(
        ds,
        parse_list(variants),
        epochs=epochs,
        patience=patience,
        seed=_seed_list(seeds) if seeds else seed,
        log=lambda s: console.print(s, highlight=False),
        options=RunOptions(cpu_threads=threads),
    )
    for n in report["notes"]:
        console.print(f"[yellow]note:[/] {n}", highlight=False)
    paths = write_ablation_report(report, out)
    console.print((out / "ablation.md").read_text(), highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in paths))


def _seed_list(spec: str) -> list[int]:
    from fusionrec.errors import ConfigError

    try:
        out = [int(x) for x in parse_list(spec)]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {spec!r}") from None
    if not out:
        raise ConfigError("--seeds is empty")
    return out


def kge_cmd(
    dataset: str = typer.Option(
        "ml-100k", "--dataset", "-d", help="Dataset name (ml-100k) or path."
    ),
    method: str = typer.Option("transe", "--method", "-m", help="transe or transr."),
    dim: int = typer.Option(64, "--dim", min=1, help="Entity dimension."),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Training epochs."),
    test_ratio: float = typer.Option(
        0.05, "--test-ratio", help="Held-out triples for link prediction."
    ),
    max_test: int = typer.Option(
        500, "--max-test", min=1, help="Evaluate at most this many held-out triples."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write entity/relation embeddings here (.npz)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed."),
) -> None:
    """Train TransE/TransR on the dataset's KG alone and report filtered MRR / Hits@k (prints the
    time per epoch, measured on a first epoch, and the expected duration)."""
    import numpy as np

    from fusionrec.data import load_dataset
    from fusionrec.errors import ConfigError
    from fusionrec.models.kg.kge import link_prediction, split_triples, train_kge

    ds = load_dataset(dataset)
    if ds.kg is None:
        raise ConfigError(f"dataset {ds.name!r} has no knowledge graph")
    from fusionrec.experiment.progress import format_duration

    train, test = split_triples(ds.kg, test_ratio, seed)
    test = test[:max_test]
    sizes = {"n_entities": len(ds.kg.entities), "n_relations": len(ds.kg.relations)}
    say = lambda s: console.print(s, highlight=False)  # noqa: E731
    say(
        f"kge: training {method} (dim {dim}) on {len(train):,} triples of {ds.name}'s KG for "
        f"{epochs} epochs, then filtered link prediction on {len(test)} held-out triples"
    )
    if epochs > 2:  # one timed epoch first: an honest estimate of the run's duration
        t0 = time.perf_counter()
        train_kge(train, method, dim, 1, seed, **sizes)  # type: ignore[arg-type]
        per_epoch = time.perf_counter() - t0
        say(f"kge: {per_epoch:.1f} s per epoch, so about {format_duration(per_epoch * epochs)} to go")
    t0 = time.perf_counter()
    emb = train_kge(train, method, dim, epochs, seed, **sizes)  # type: ignore[arg-type]
    fit_s = time.perf_counter() - t0
    m = link_prediction(emb, test, known=[train])
    console.print(
        f"{method}: {len(train)} train / {len(test)} test triples, fit {fit_s:.1f}s, "
        + ", ".join(f"{k} {v:.4f}" for k, v in m.items()),
        highlight=False,
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "entity": emb.entity,
            "relation": emb.relation,
            "entity_ids": ds.kg.entities.ids,
            "relation_ids": ds.kg.relations.ids,
        }
        if emb.proj is not None:
            arrays["proj"] = emb.proj
        tmp = output.with_name(f".{output.name}.tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(output)
        console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("ablation")(ablation_cmd)
    app.command("kge")(kge_cmd)
