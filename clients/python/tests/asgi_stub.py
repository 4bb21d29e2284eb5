"""A downstream ASGI app and one request through a middleware, for the middleware's tests on stub clients."""

from __future__ import annotations

from typing import Any

from rivven.asgi import RateLimitMiddleware


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def call(mw: RateLimitMiddleware, tenant: str) -> list[dict[str, Any]]:
    """One GET with `x-tenant-id: tenant`; the messages the middleware (or the app) sent back."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    await mw({"type": "http", "headers": [(b"x-tenant-id", tenant.encode())]}, receive, send)
    return sent
