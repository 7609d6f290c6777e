"""The FastAPI app factory. The lifespan opens the stores and loads the model into ``app.state``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fusionrec.errors import ConfigError, UnknownIdError
from fusionrec.serving.middleware import AuthMiddleware, BodyLimitMiddleware, MetricsMiddleware
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
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(x) if not isinstance(x, int) else x for x in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        msg = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        ctype = request.headers.get("content-type", "")
        if request.method in ("POST", "PUT", "PATCH") and "json" not in ctype.lower():
            msg = (
                f"the body must be JSON sent with 'Content-Type: application/json' "
                f"(got {ctype[:64]!r}; with curl add -H 'Content-Type: application/json'); {msg}"
            )
        return JSONResponse({"detail": msg, "errors": errors}, status_code=422)

    @app.exception_handler(UnknownIdError)
    async def _unknown(_: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    # outermost first: metrics count every answer (431/413/401 included), then the size limits,
    # then the key check, which runs before any body is read
    app.add_middleware(AuthMiddleware, service=svc)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, settings: ServeSettings) -> dict:
    """FastAPI's document with this service's real ``k`` bound (``max_k``)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, routes=app.routes, description=_DESCRIPTION
    )
    schemas = doc.get("components", {}).get("schemas", {})
    k = schemas.get("RecommendRequest", {}).get("properties", {}).get("k")
    if k is not None:
        k["maximum"] = settings.max_k
    for path in doc.get("paths", {}).values():
        for op in path.values():
            for p in op.get("parameters", []):
                if p.get("name") == "k" and p.get("in") == "query":
                    p["schema"]["maximum"] = settings.max_k
    app.openapi_schema = doc
    return doc


_DESCRIPTION = (
    "Recommendations over HTTP. Every /v1 route needs an API key "
    "(`Authorization: Bearer <key>` or `X-API-Key: <key>`; `fusionrec keys create`). "
    "JSON bodies need `Content-Type: application/json`."
)


async def _poll(svc: Service) -> None:
    while True:
        await asyncio.sleep(svc.settings.registry_poll_s)
        try:
            await run_in_threadpool(svc.poll_registry)
        except Exception as e:  # keep serving the old model; try again next time
            log.warning("registry reload failed: %s", e)
