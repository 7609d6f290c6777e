"""FastAPI dependencies: the service, the model state (override it in tests), API-key checks.

They are ``async`` so that FastAPI calls them on the event loop instead of sending each one
through the thread pool. The key itself is checked by :class:`AuthMiddleware` before the body
is read; ``require_key`` hands its result to routes and declares the two security schemes
(bearer token, ``X-API-Key`` header) in the OpenAPI document.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from fusionrec.serving.auth import KeyInfo
from fusionrec.serving.engine import ModelState
from fusionrec.serving.middleware import presented_key
from fusionrec.serving.service import Service

__all__ = ["get_service", "get_model_state", "require_key", "require_admin"]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer frk_...`")
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: frk_...`"
)


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


async def require_key(
    request: Request,
    svc: Service = Depends(get_service),
    _b: HTTPAuthorizationCredentials | None = Depends(_bearer),
    _h: str | None = Depends(_header),
) -> KeyInfo:
    """The key checked by the auth middleware (checked here when the middleware is absent):
    401 without a key or with an unknown one, 403 for a revoked one."""
    key = getattr(request.state, "api_key", None)
    if isinstance(key, KeyInfo):
        return key
    token = presented_key({k.lower(): v for k, v in request.headers.items()})
    if token is None:
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    check = svc.cached_key(token)
    if check is None:  # the database, off the event loop
        check = await run_in_threadpool(svc.check_key, token)
    if check.status == "revoked":
        raise HTTPException(403, "API key revoked")
    if check.status != "ok" or check.key is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return check.key


async def require_admin(key: KeyInfo = Depends(require_key)) -> KeyInfo:
    """403 unless the key has the admin scope."""
    if "admin" not in key.scopes:
        raise HTTPException(403, "this API key lacks the 'admin' scope")
    return key
