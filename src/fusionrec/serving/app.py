"""The FastAPI app factory. The lifespan opens the stores and loads the model into ``app.state``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fusionrec.errors import ConfigError, UnknownIdError
from fusionrec.serving.middleware import BodyLimitMiddleware, MetricsMiddleware
from fusionrec.serving.routes import admin, ops, v1
from fusionrec.serving.service import Service
from fusionrec.serving.settings import ServeSettings

__all__ = ["create_app"]

log = logging.getLogger("fusionrec.serving")


def create_app(settings: ServeSettings | None = None, service: Service | None = None) -> FastAPI:
    """A new app. ``settings`` default to ``ServeSettings.from_env()``; a ready ``service`` may be given."""
    settings = settings or (service.settings if service is not None else ServeSettings.from_env())
    svc = service or Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = svc
        if svc.state is None and svc.source() is not None:
            await run_in_threadpool(svc.reload)
        task = asyncio.create_task(_poll(svc)) if settings.registry is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            svc.close()

    app = FastAPI(title="fusionrec", version="1", lifespan=lifespan)
    app.state.service = svc
    app.include_router(ops.router)
    app.include_router(v1.router)
    app.include_router(admin.router)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        msg = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": msg, "errors": errors}, status_code=422)

    @app.exception_handler(UnknownIdError)
    async def _unknown(_: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


async def _poll(svc: Service) -> None:
    while True:
        await asyncio.sleep(svc.settings.registry_poll_s)
        try:
            await run_in_threadpool(svc.poll_registry)
        except Exception as e:  # keep serving the old model; try again next time
            log.warning("registry reload failed: %s", e)
