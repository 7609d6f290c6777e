"""``fusionrec retrain``: fold stored feedback into the dataset and fit a new model version."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("retrain")
    def retrain(
        events: str = typer.Option(
            ...,
            "--events",
            help="SQLAlchemy URL (or SQLite file path) of the service's event store.",
        ),
        model_dir: Path = typer.Option(
            ..., "--model-dir", help="The model folder whose name and params are reused."
        ),
        dataset: str = typer.Option(
            ..., "--dataset", help="Dataset name (e.g. ml-100k) or saved dataset folder."
        ),
        output: Path = typer.Option(
            ..., "--output", help="Folder of the new version (e.g. REGISTRY/<version>)."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed of the fit."),
    ) -> None:
        """Fit a new model version on dataset + feedback events."""
        import time

        from fusionrec.cli._common import console
        from fusionrec.serving.retrain import load_dataset_arg
        from fusionrec.serving.retrain import retrain as run

        url = events if "://" in events else f"sqlite:///{Path(events).resolve()}"
        ds = load_dataset_arg(dataset)
        t0 = time.perf_counter()
        model, folded, n = run(url, model_dir, ds, output, seed=seed)
        console.print(
            f"folded {n} events into {ds.name} ({ds.n_interactions} -> {folded.n_interactions} interactions, "
            f"{ds.n_users} -> {folded.n_users} users, {ds.n_items} -> {folded.n_items} items); "
            f"fitted {model.name} in {time.perf_counter() - t0:.1f}s -> {output}",
            highlight=False,
        )
