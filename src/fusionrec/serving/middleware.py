"""ASGI middleware: header- and body-size limits (431, 413), API-key checks before the body is
read (401, 403), and request metrics (outermost, so refused requests are counted too)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from fusionrec.serving.metrics import Metrics

if TYPE_CHECKING:
    from fusionrec.serving.service import Service

__all__ = ["BodyLimitMiddleware", "MetricsMiddleware", "AuthMiddleware", "presented_key"]


async def _send_json(
    send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_413(send, limit: int) -> None:
    await _send_json(send, 413, f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    """Refuse header lines over ``max_header_bytes`` in total (431), and bodies over
    ``max_bytes`` (413): by Content-Length up front, and by counting streamed chunks."""

    def __init__(self, app, max_bytes: int, max_header_bytes: int = 32 * 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        size = sum(len(n) + len(v) + 4 for n, v in scope.get("headers", ()))
        if size > self.max_header_bytes:
            return await _send_json(
                send, 431, f"request headers larger than {self.max_header_bytes} bytes"
            )
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    if int(value) > self.max_bytes:
                        return await _send_413(send, self.max_bytes)
                except ValueError:
                    return await _send_413(send, self.max_bytes)
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # the HTTP parser delivers exactly Content-Length bytes (none without the header):
            # nothing more to count, so the request goes on without wrapped receive/send
            return await self.app(scope, receive, send)
        seen = 0
        started = False
        refused = False

        async def limited_receive():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    # answer 413 now and tell the app the client went away; what it sends later is dropped
                    refused = True
                    if not started:
                        await _send_413(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return msg

        async def tracking_send(msg):
            nonlocal started
            if refused:
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        await self.app(scope, limited_receive, tracking_send)


class MetricsMiddleware:
    """Count requests by method, route template and status; time them per route."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is None:  # refused before routing (431, 413, 401, 403) or no such route
                raw = scope.get("path", "")
                path = "/v1/*" if raw == "/v1" or raw.startswith("/v1/") else "unmatched"
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)


def presented_key(headers: dict[str, str]) -> str | None:
    """The API key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (lower-case names)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


_BEARER = [(b"www-authenticate", b"Bearer")]


class AuthMiddleware:
    """Check the API key of every ``/v1`` request before its body is read or parsed: 401 without
    a key or with an unknown one, 403 for a revoked key or, under ``/v1/admin``, a key without
    the admin scope. The checked :class:`~fusionrec.serving.auth.KeyInfo` is left in
    ``scope["state"]["api_key"]`` for the route dependencies."""

    def __init__(self, app, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/v1" or path.startswith("/v1/")):
            return await self.app(scope, receive, send)
        headers: dict[str, str] = {}
        for n, v in scope.get("headers", ()):
            headers.setdefault(n.decode("latin-1").lower(), v.decode("latin-1"))
        token = presented_key(headers)
        if token is None:
            return await _send_json(
                send,
                401,
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                _BEARER,
            )
        svc = self.service
        check = svc.cached_key(token)
        if check is None:  # the database, off the event loop
            check = await run_in_threadpool(svc.check_key, token)
        if check.status == "revoked":
            return await _send_json(send, 403, "API key revoked")
        if check.status != "ok" or check.key is None:
            return await _send_json(send, 401, "unknown API key", _BEARER)
        if (
            path == "/v1/admin" or path.startswith("/v1/admin/")
        ) and "admin" not in check.key.scopes:
            return await _send_json(send, 403, "this API key lacks the 'admin' scope")
        scope.setdefault("state", {})["api_key"] = check.key
        await self.app(scope, receive, send)
