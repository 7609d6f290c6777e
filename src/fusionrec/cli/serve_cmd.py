"""``fusionrec serve``: run the recommendation service with uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model_dir: Path = typer.Option(None, "--model-dir", help="Saved model folder to serve."),
        registry: Path = typer.Option(
            None,
            "--registry",
            help="Registry folder with one model version per sub-folder (polled).",
        ),
        host: str = typer.Option(None, "--host", help="Interface to bind (default 127.0.0.1)."),
        port: int = typer.Option(None, "--port", help="Port (default 8000)."),
        events: str = typer.Option(
            None,
            "--events",
            help="SQLAlchemy URL of the event/key store (default sqlite in $FUSIONREC_HOME).",
        ),
        dataset: str = typer.Option(
            None,
            "--dataset",
            help="Dataset name or folder giving titles/genres when the model has no catalog.",
        ),
        log_level: str = typer.Option(
            "info", "--log-level", help="Log level of the service and of uvicorn (debug, info, warning, error)."
        ),
        workers: int = typer.Option(
            None,
            "--workers",
            min=1,
            max=64,
            help="Worker processes sharing the model read-only (memory-mapped); default 1.",
        ),
        ann: bool = typer.Option(
            None,
            "--ann/--no-ann",
            help="Serve every model with user and item vectors through an approximate index "
            "(candidates re-ranked exactly), whatever the catalogue size.",
        ),
        ann_kind: str = typer.Option(None, "--ann-kind", help="ivf (default) or hnsw."),
    ) -> None:
        """Serve a model over HTTP (settings also from FUSIONREC_* environment variables)."""
        import logging

        import uvicorn

        level = logging.getLevelName(log_level.upper())
        if not isinstance(level, int):
            raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
        logging.getLogger("fusionrec").setLevel(level)  # the service's own lines follow it too

        from fusionrec.errors import ConfigError
        from fusionrec.serving import create_app
        from fusionrec.serving.settings import ServeSettings
        from fusionrec.serving.workers import limit_faiss_threads

        settings = ServeSettings.from_env(
            model_dir=model_dir,
            registry=registry,
            host=host,
            port=port,
            events_url=events,
            dataset=dataset,
            workers=workers,
            ann=ann,
            ann_kind=ann_kind,
        )
        if settings.model_dir is None and settings.registry is None:
            raise ConfigError("give --model-dir DIR or --registry DIR")
        if (
            settings.model_dir is not None
            and not (settings.model_dir / "config.json").is_file()
            and settings.registry is None
        ):
            raise ConfigError(
                f"{settings.model_dir} is not a saved fusionrec model (config.json missing)"
            )
        # uvicorn's access log would print raw user ids from paths and query strings; the
        # service logs pseudonymised ids itself and counts requests in /metrics.
        # The standard asyncio loop: with uvloop, 48+ busy keep-alive connections on a
        # saturated core left some requests waiting over a second (benchmarks/load_test.py).
        common = dict(
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            access_log=False,
            loop="asyncio",
        )
        if settings.workers == 1:
            limit_faiss_threads()
            uvicorn.run(create_app(settings), workers=1, **common)
            return
        _serve_workers(settings, log_level, common)


def _serve_workers(settings, log_level: str, common: dict) -> None:
    """uvicorn with ``settings.workers`` processes: the settings travel as JSON in the
    environment (uvicorn starts workers from an import string), with a shared change counter
    for their caches (``serving/worker_sync.py``) and, unless given, one log secret for all,
    so a user's pseudonym is the same whichever worker logs it."""
    import os
    import secrets
    import shutil
    import tempfile

    import uvicorn

    from fusionrec.serving.workers import worker_environment

    tmp = tempfile.mkdtemp(prefix="fusionrec-serve-")
    try:
        shared = settings.model_copy(
            update={
                "sync_file": Path(tmp) / "changes",
                "log_secret": settings.log_secret or secrets.token_hex(32),
            }
        )
        os.environ.update(worker_environment(shared, log_level))
        uvicorn.run(
            "fusionrec.serving.workers:app_from_env",
            factory=True,
            workers=settings.workers,
            # uvicorn pings each worker and replaces one silent for this long; its default (5 s)
            # killed every worker here while it imported torch (which holds the GIL, ~10 s on
            # 2 busy cores), before its app existed
            timeout_worker_healthcheck=120,
            **common,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
