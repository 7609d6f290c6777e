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

        settings = ServeSettings.from_env(
            model_dir=model_dir,
            registry=registry,
            host=host,
            port=port,
            events_url=events,
            dataset=dataset,
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
        try:  # one query at a time: OpenMP threads only add spin-wait contention
            import faiss

            faiss.omp_set_num_threads(1)
        except ImportError:
            pass
        # uvicorn's access log would print raw user ids from paths and query strings; the
        # service logs pseudonymised ids itself and counts requests in /metrics
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            workers=1,
            access_log=False,
            # the standard asyncio loop: with uvloop, 48+ busy keep-alive connections on a
            # saturated core left some requests waiting over a second (benchmarks/load_test.py)
            loop="asyncio",
        )
