"""RateLimitMiddleware: real HTTP requests (httpx) to a real app (Starlette/FastAPI under uvicorn on port 0)."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from rivven import QuotaClient
from rivven.asgi import RateLimitMiddleware

from .harness import Harness
from .sidecar import Sidecar


class Uvicorn:
    """An ASGI app served by uvicorn in a thread, on a port the kernel picks."""

    def __init__(self, app: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Gate:
    """Holds /slow requests inside the app until opened, and says when one is in."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()


def starlette_app(gate: Gate) -> Starlette:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"hello": request.headers.get("x-tenant-id")})

    async def slow(request: Request) -> JSONResponse:
        gate.entered.set()
        await asyncio.to_thread(gate.open.wait, 30)
        return JSONResponse({"slow": True})

    return Starlette(routes=[Route("/", hello), Route("/slow", slow)])


@pytest.fixture
def manual(harness: Harness) -> Iterator[dict[str, Any]]:
    s = harness.cmd("start_sidecar", clock="manual")
    try:
        yield s
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


FREE_TIER = [
    {"entity": [("tier", "free")], "quota_key": "request_rate", "quota_value": 5},
    {"entity": [("tier", "free")], "quota_key": "request_burst", "quota_value": 10},
    {"entity": [("user", "T")], "quota_key": "tier", "quota_value": "free"},
    {"entity": [("user", "M")], "quota_key": "blocked", "quota_value": "unpaid invoice"},
    {"entity": [("user", "L")], "quota_key": "max_in_flight", "quota_value": 1},
]


def test_free_tier_gets_10_then_429_and_retry_after_honoured_succeeds(harness: Harness, manual: dict[str, Any]) -> None:
    with QuotaClient(port=manual["port"]) as admin:
        assert admin.alter_quotas(FREE_TIER) == len(FREE_TIER)  # type: ignore[arg-type]
    # A generous deadline: this test is about the answers, not about failing open on a slow machine.
    mw = RateLimitMiddleware(starlette_app(Gate()), port=manual["port"], record_deadline=10)
    server = Uvicorn(mw)
    try:
        with httpx.Client(base_url=server.url, headers={"x-tenant-id": "T"}) as http:
            codes = [http.get("/").status_code for _ in range(10)]
            assert codes == [200] * 10
            deadline = time.monotonic() + 30
            while "T" not in mw._usage:  # the limit headers come from a snapshot fetched in the background
                assert time.monotonic() < deadline
                time.sleep(0.005)
            refused = http.get("/")
            assert refused.status_code == 429
            assert refused.json() == {"error": "rate_limited", "retry_after_ms": 200}
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["x-ratelimit-limit"] == "5"
            assert refused.headers["x-ratelimit-remaining"] == "0"
            assert refused.headers["x-ratelimit-reset"] == "1"
            assert http.get("/").status_code == 429  # refused calls record nothing: the wait does not grow
            harness.cmd("advance_clock", sidecar=manual["sidecar"], ms=1000 * int(refused.headers["retry-after"]))
            again = http.get("/")
            assert again.status_code == 200 and again.json() == {"hello": "T"}
            assert again.headers["x-ratelimit-limit"] == "5"
            other = [http.get("/", headers={"x-tenant-id": "U"}).status_code for _ in range(30)]
            assert other == [200] * 30  # another tenant is untouched
            blocked = http.get("/", headers={"x-tenant-id": "M"})
            assert blocked.status_code == 403 and blocked.json() == {"error": "forbidden", "reason": "unpaid invoice"}
            anonymous = httpx.get(server.url + "/")
            assert anonymous.status_code == 200 and anonymous.json() == {"hello": None}
        assert mw.failures == 0
    finally:
        server.stop()


def test_leases_bound_concurrent_requests(manual: dict[str, Any]) -> None:
    with QuotaClient(port=manual["port"]) as admin:
        admin.alter_quotas(FREE_TIER)  # type: ignore[arg-type]
    gate = Gate()
    mw = RateLimitMiddleware(starlette_app(gate), port=manual["port"], record_deadline=10, leases=True)
    server = Uvicorn(mw)
    try:
        with httpx.Client(base_url=server.url, headers={"x-tenant-id": "L"}, timeout=30) as http:
            holder: list[httpx.Response] = []
            first = threading.Thread(target=lambda: holder.append(http.get("/slow")))
            first.start()
            assert gate.entered.wait(30)
            second = http.get("/")
            assert second.status_code == 429 and second.json()["error"] == "too_many_in_flight"
            assert int(second.headers["retry-after"]) >= 1
            gate.open.set()
            first.join(30)
            assert holder[0].status_code == 200
            deadline = time.monotonic() + 30
            while (third := http.get("/")).status_code == 429:  # the lease is released in the background
                assert time.monotonic() < deadline
            assert third.status_code == 200
    finally:
        gate.open.set()
        server.stop()


def test_requests_pass_when_the_sidecar_is_killed(sidecar: Sidecar) -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, bool]:
        return {"ok": True}

    errors: list[Exception] = []
    app.add_middleware(RateLimitMiddleware, port=sidecar.port, leases=True, on_error=errors.append)
    server = Uvicorn(app)
    try:
        with httpx.Client(base_url=server.url, headers={"x-tenant-id": "T"}, timeout=10) as http:
            assert http.get("/").status_code == 200
            sidecar.signal(signal.SIGKILL)
            for _ in range(20):
                assert http.get("/").status_code == 200
            assert errors and {getattr(e, "code", None) for e in errors} <= {
                "UNAVAILABLE",
                "CONNECTION_CLOSED",
                "TIMEOUT",
            }
    finally:
        server.stop()
    # The sidecar was never there: the app starts, and requests pass.
    absent = FastAPI()
    absent.add_middleware(RateLimitMiddleware, port=1, connect_timeout=0.2)
    absent.get("/")(root)
    server = Uvicorn(absent)
    try:
        assert httpx.get(server.url + "/", headers={"x-tenant-id": "T"}).status_code == 200
    finally:
        server.stop()


def bytes_app() -> Starlette:
    async def upload(request: Request) -> JSONResponse:
        return JSONResponse({"got": len(await request.body())})

    async def big(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x" * 3000)

    return Starlette(routes=[Route("/up", upload, methods=["POST"]), Route("/big", big)])


def test_count_bytes_request_and_response_bodies(harness: Harness, manual: dict[str, Any]) -> None:
    with QuotaClient(port=manual["port"]) as admin:
        admin.alter_quotas(
            [
                {"entity": [("user", "B")], "quota_key": "produce_bytes_rate", "quota_value": 1000},
                {"entity": [("user", "R")], "quota_key": "consume_bytes_rate", "quota_value": 1000},
            ]
        )
    now = [1000.0]
    mw = RateLimitMiddleware(
        bytes_app(), port=manual["port"], record_deadline=10, count_bytes=True, clock=lambda: now[0]
    )

    def advance(seconds: int) -> None:
        now[0] += seconds
        harness.cmd("advance_clock", sidecar=manual["sidecar"], ms=1000 * seconds)

    server = Uvicorn(mw)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            up = {"x-tenant-id": "B"}
            # A body with Content-Length: recorded up front, in admit mode.
            assert http.post("/up", content=b"a" * 800, headers=up).status_code == 200
            refused = http.post("/up", content=b"a" * 800, headers=up)
            assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
            advance(int(refused.headers["retry-after"]))
            assert http.post("/up", content=b"a" * 800, headers=up).status_code == 200
            assert http.post("/up", content=b"a" * 5000, headers={"x-tenant-id": "other"}).status_code == 200
            # A chunked body: counted as read, recorded after the response; its throttle refuses what follows.
            advance(5)
            chunked = http.post("/up", content=iter([b"b" * 1500, b"b" * 1500]), headers=up)
            assert chunked.status_code == 200 and chunked.json() == {"got": 3000}
            deadline = time.monotonic() + 30
            while (after := http.post("/up", content=b"a", headers=up)).status_code == 200:
                assert time.monotonic() < deadline, "the chunked body's bytes were never recorded"
            assert after.status_code == 429
            advance(int(after.headers["retry-after"]))
            assert http.post("/up", content=b"a", headers=up).status_code == 200, "Retry-After honoured"
            # Responses: recorded after the fact, as Kafka records a fetch.
            read = {"x-tenant-id": "R"}
            assert http.get("/big", headers=read).status_code == 200
            deadline = time.monotonic() + 30
            while (nxt := http.get("/big", headers=read)).status_code == 200:
                assert time.monotonic() < deadline, "the response bytes were never recorded"
            assert nxt.status_code == 429
            assert http.get("/big", headers={"x-tenant-id": "someone"}).status_code == 200
            advance(int(nxt.headers["retry-after"]) + 5)
            assert http.get("/big", headers=read).status_code == 200
        assert mw.failures == 0
    finally:
        server.stop()
