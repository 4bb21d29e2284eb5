"""RateLimitMiddleware(resource=...): each request is RecordUsage of that named resource, not RecordRequest (a stub
client, no sockets; the wire itself is checked by the conformance vectors)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rivven import RivvenError
from rivven.asgi import RateLimitMiddleware
from rivven.protocol import OK_RESULT, RecordResult

from .asgi_stub import app, call


class UsageStub:
    """Answers RecordUsage from ``answers`` (OK when empty) and keeps every call; RecordRequest must not be made."""

    def __init__(self, *answers: RecordResult | RivvenError) -> None:
        self.answers = list(answers)
        self.usage: list[tuple[Any, ...]] = []
        self.requests = 0

    def record_usage(self, *args: Any, **kwargs: Any) -> asyncio.Future[RecordResult]:
        self.usage.append((*args, kwargs["admit"]))
        fut: asyncio.Future[RecordResult] = asyncio.get_running_loop().create_future()
        answer = self.answers.pop(0) if self.answers else OK_RESULT
        if isinstance(answer, RivvenError):
            fut.set_exception(answer)
        else:
            fut.set_result(answer)
        return fut

    def record_request(self, *args: Any, **kwargs: Any) -> asyncio.Future[RecordResult]:
        self.requests += 1
        raise AssertionError("a resource's middleware made a RecordRequest")

    async def describe_usage(self, entities: list[tuple[str, str]], **kwargs: Any) -> list[dict[str, Any]]:
        user = entities[0][1]
        return [
            {"quota_type": "request_rate", "user": user, "client_id": None, "limit": 1000, "rate": 0.0},
            {"quota_type": "orders_rate", "user": user, "client_id": None, "limit": 10, "rate": 3.0},
        ]


async def test_each_request_records_usage_of_the_resource_in_admit_mode() -> None:
    stub = UsageStub()
    mw = RateLimitMiddleware(app, client=stub, resource="orders", cost=lambda scope: 3)  # type: ignore[arg-type]
    assert (await call(mw, "acme"))[0]["status"] == 200
    assert stub.usage == [("acme", None, "orders", 3, True)]
    assert stub.requests == 0


async def test_a_throttled_usage_is_429_and_the_headers_come_from_the_resources_row() -> None:
    throttled = RecordResult(6000, False, "orders_rate", "user:acme", period="min")
    stub = UsageStub(OK_RESULT, throttled)
    mw = RateLimitMiddleware(app, client=stub, resource="orders")  # type: ignore[arg-type]
    await call(mw, "acme")
    await asyncio.sleep(0)  # the background refresh of the tenant's usage row
    await asyncio.sleep(0)
    sent = await call(mw, "acme")
    assert sent[0]["status"] == 429
    assert (b"retry-after", b"7") in sent[0]["headers"]
    assert (b"x-ratelimit-limit", b"10") in sent[0]["headers"], "orders_rate's limit, not request_rate's"
    ok = await call(mw, "acme")
    assert (b"x-ratelimit-remaining", b"7") in ok[0]["headers"]


async def test_an_undeclared_resource_fails_open_and_is_reported() -> None:
    errors: list[Exception] = []
    stub = UsageStub(RivvenError("INVALID_REQUEST", "resource orders is not declared in quotas.resources"))
    mw = RateLimitMiddleware(app, client=stub, resource="orders", on_error=errors.append)  # type: ignore[arg-type]
    assert (await call(mw, "acme"))[0]["status"] == 200
    assert mw.failures == 1
    assert [getattr(e, "code", None) for e in errors] == ["INVALID_REQUEST"]


@pytest.mark.parametrize("bad", ["", "Orders", "1orders", "or-ders", "o" * 33])
def test_a_resource_name_off_the_grammar_is_refused_at_construction(bad: str) -> None:
    with pytest.raises(ValueError, match="resource"):
        RateLimitMiddleware(app, client=UsageStub(), resource=bad)  # type: ignore[arg-type]
