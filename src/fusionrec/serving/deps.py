"""FastAPI dependencies: the service, the model state (override it in tests), API-key checks.

They are ``async`` so that FastAPI calls them on the event loop instead of sending each one
through the thread pool; only a key check that misses the in-memory cache goes to a thread.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from fusionrec.serving.auth import KeyInfo
from fusionrec.serving.engine import ModelState
from fusionrec.serving.service import Service

__all__ = ["get_service", "get_model_state", "require_key", "require_admin"]


async def get_service(request: Request) -> Service:
    """The app's :class:`Service` (created in the lifespan)."""
    svc = getattr(request.app.state, "service", None)
    if svc is None:
        raise HTTPException(503, "service not started")
    return svc


async def get_model_state(svc: Service = Depends(get_service)) -> ModelState:
    """The model state answering now (tests replace this through ``app.dependency_overrides``)."""
    state = svc.state
    if state is None:
        raise HTTPException(503, "no model loaded yet")
    return state


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


async def require_key(request: Request, svc: Service = Depends(get_service)) -> KeyInfo:
    """401 without a key or with an unknown one, 403 for a revoked one."""
    token = _presented_key(request)
    if token is None:
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    check = svc.cached_key(token)
    if check is None:  # the database, off the event loop
        check = await run_in_threadpool(svc.check_key, token)
    if check.status == "unknown":
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if check.status == "revoked":
        raise HTTPException(403, "API key revoked")
    assert check.key is not None
    return check.key


async def require_admin(key: KeyInfo = Depends(require_key)) -> KeyInfo:
    """403 unless the key has the admin scope."""
    if "admin" not in key.scopes:
        raise HTTPException(403, "this API key lacks the 'admin' scope")
    return key
