"""RateLimitMiddleware's bounds, on a stub client (no sockets): the usage cache and the refreshes in flight."""

from __future__ import annotations

import asyncio
from typing import Any

from rivven.asgi import RateLimitMiddleware
from rivven.protocol import OK_RESULT, RecordResult

from .asgi_stub import app, call


class StubClient:
    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.describes = 0
        self.forever: asyncio.Future[None] | None = None

    def record_request(self, *args: Any, **kwargs: Any) -> asyncio.Future[RecordResult]:
        fut: asyncio.Future[RecordResult] = asyncio.get_running_loop().create_future()
        fut.set_result(OK_RESULT)
        return fut

    async def describe_usage(self, entities: list[tuple[str, str]], **kwargs: Any) -> list[dict[str, Any]]:
        self.describes += 1
        if self.hang:
            self.forever = asyncio.get_running_loop().create_future()
            await self.forever
        user = entities[0][1]
        return [{"quota_type": "request_rate", "user": user, "client_id": None, "limit": 5, "rate": 1.0}]


async def test_the_usage_cache_keeps_at_most_max_tenants() -> None:
    stub = StubClient(hang=False)
    mw = RateLimitMiddleware(app, client=stub, max_tenants=3)  # type: ignore[arg-type]
    for i in range(10):
        await call(mw, f"t{i}")
        await asyncio.sleep(0)  # let the background refresh of that tenant finish
        await asyncio.sleep(0)
    assert stub.describes == 10
    assert list(mw._usage) == ["t7", "t8", "t9"]
    sent = await call(mw, "t9")
    assert (b"x-ratelimit-limit", b"5") in sent[0]["headers"]
    assert (b"x-ratelimit-remaining", b"4") in sent[0]["headers"]


async def test_refreshes_in_flight_are_bounded() -> None:
    stub = StubClient(hang=True)
    mw = RateLimitMiddleware(app, client=stub)  # type: ignore[arg-type]
    for i in range(200):
        assert (await call(mw, f"t{i}"))[0]["status"] == 200
    await asyncio.sleep(0)
    assert stub.describes == 64 and len(mw._refreshing) == 64
    for task in list(mw._tasks):
        task.cancel()
