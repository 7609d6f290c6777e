"""Unauthenticated operations routes: liveness, readiness, metrics and the web page."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from fusionrec.serving.deps import get_model_state, get_service
from fusionrec.serving.service import Service

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up (answered on the event loop: its latency is the loop's)."""
    return {"status": "ok"}


_NOT_READY = {503: {"description": "No validated model answers (loading, failed or failing)"}}


@router.get("/readyz", responses=_NOT_READY)
def readyz(request: Request, svc: Service = Depends(get_service)) -> JSONResponse:
    """200 while a validated model answers; 503 before one is loaded, when loading failed and
    nothing is served, or after three requests in a row failed inside the model. A refused
    reload keeps the previous model (200) and is reported as ``last_reload_error``."""
    override = request.app.dependency_overrides.get(get_model_state)
    state = override() if override is not None else svc.state
    err = svc.load_error
    if state is None:
        if err is not None:
            return JSONResponse(
                {"status": "failed", "error": err[1], "path": err[0]}, status_code=503
            )
        return JSONResponse({"status": "loading"}, status_code=503)
    if svc.consecutive_failures >= 3:
        return JSONResponse(
            {
                "status": "failing",
                "model": state.name,
                "version": state.version,
                "error": svc.last_failure,
                "failed_requests_in_a_row": svc.consecutive_failures,
            },
            status_code=503,
        )
    body = {"status": "ready", "model": state.name, "version": state.version}
    if err is not None:
        body["last_reload_error"] = f"{err[0]}: {err[1]}"
    return JSONResponse(body)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(svc: Service = Depends(get_service)) -> Response:
    """Prometheus text format."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """The web page (static HTML + vanilla JS)."""
    return HTMLResponse(
        files("fusionrec.serving").joinpath("static/index.html").read_text(encoding="utf-8")
    )
