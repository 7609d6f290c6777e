"""Unauthenticated operations routes: liveness, readiness, metrics and the web page."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from fusionrec.serving.deps import get_model_state, get_service
from fusionrec.serving.service import Service

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, svc: Service = Depends(get_service)) -> JSONResponse:
    """Ready when a model is loaded (503 before)."""
    override = request.app.dependency_overrides.get(get_model_state)
    state = override() if override is not None else svc.state
    if state is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ready", "model": state.name, "version": state.version})


@router.get("/metrics")
def metrics(svc: Service = Depends(get_service)) -> Response:
    """Prometheus text format."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """The web page (static HTML + vanilla JS)."""
    return HTMLResponse(
        files("fusionrec.serving").joinpath("static/index.html").read_text(encoding="utf-8")
    )
