"""What a hostile server or a cancelled caller did to the broker wrapper and the middleware, beyond the kit's modes."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from typing import Any

import msgpack
import pytest

from rivven import AsyncBrokerQuotas, AsyncQuotaClient, BreakerOptions, RivvenError
from rivven.asgi import RateLimitMiddleware
from rivven.protocol import OK_RESULT, decode_record

from .asgi_stub import app, call
from .sidecar import Sidecar


class Peer:
    """Answers Hello with HelloOk; every later frame with ``reply(cid)`` (None: no answer)."""

    def __init__(self) -> None:
        self.reply: Any = lambda cid: None
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        hello = True
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                n, cid = struct.unpack(">II", await r.readexactly(8))
                await r.readexactly(n - 4)
                if hello:
                    body: Any = {"type": "HelloOk", "protocol_version": 1, "server_version": "peer"}
                    hello = False
                else:
                    body = self.reply(cid)
                if body is not None:
                    raw = msgpack.packb(body)
                    w.write(struct.pack(">II", len(raw) + 4, cid) + raw)
        w.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def throttled(ms: int) -> dict[str, Any]:
    return {"type": "Throttled", "throttle_time_ms": ms, "quota_type": "request_rate", "entity": "u", "recorded": True}


@pytest.mark.parametrize("ms", [-1, -5000, 0, 2**53, 2**64 - 1])
def test_a_throttled_reply_without_a_sane_wait_is_unexpected(ms: int) -> None:
    # throttle_time_ms -1 came out of the broker wrapper as -1: DENIED, and the broker rejected the request.
    with pytest.raises(RivvenError) as e:
        decode_record(throttled(ms))
    assert e.value.code == "UNEXPECTED_REPLY"


async def test_the_broker_wrapper_answers_0_for_a_negative_throttle() -> None:
    peer = Peer()
    peer.reply = lambda cid: throttled(-1)
    port = await peer.start()
    try:
        async with AsyncQuotaClient(port=port) as client:
            quotas = AsyncBrokerQuotas(client, record_deadline=5)
            assert await quotas.request("u", "c") == 0
            assert quotas.failures == 1 and quotas.denied == 0
    finally:
        peer.close()


async def test_a_cancelled_probe_gives_the_probe_back() -> None:
    # A caller cancelled while its call was the breaker's probe left the breaker half-open with the probe taken:
    # every later call failed open at once, forever, even with the sidecar back.
    peer = Peer()
    port = await peer.start()
    now = [0.0]
    try:
        async with AsyncQuotaClient(port=port) as client:
            quotas = AsyncBrokerQuotas(client, record_deadline=0.05, breaker=BreakerOptions(1, 1.0), now=lambda: now[0])
            assert await quotas.request("u", "c") == 0  # no answer: the breaker opens
            assert quotas.breaker.state == "open"
            now[0] = 2.0
            probe = asyncio.ensure_future(quotas.request("u", "c"))
            await asyncio.sleep(0)  # the probe runs to its await: sent, and pending
            assert client.pending_count == 1
            assert quotas.breaker.state == "half-open"
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
            peer.reply = lambda cid: {"type": "Ok", "throttle_time_ms": 0}
            assert await quotas.request("u", "c") == 0
            assert quotas.breaker.state == "closed" and quotas.short_circuited == 0
    finally:
        peer.close()


class _SlowClient:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def record_request(self, *args: Any, **kwargs: Any) -> Any:
        self.started.set()
        await asyncio.get_running_loop().create_future()


async def test_a_request_cancelled_during_the_probe_gives_the_probe_back() -> None:
    stub = _SlowClient()
    mw = RateLimitMiddleware(app, client=stub, rate_limit_headers=False, breaker=BreakerOptions(1, 1.0))  # type: ignore[arg-type]
    mw.breaker.failure()
    mw.breaker._opened_at = -10.0  # long open: the next request is the probe
    task = asyncio.ensure_future(call(mw, "t"))
    await stub.started.wait()
    assert mw.breaker.state == "half-open"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert mw.breaker.allow(), "the next request may probe"


async def test_a_tenant_the_sidecar_refuses_as_a_name_gets_400(sidecar: Sidecar) -> None:
    # A tenant of 1025 bytes was let through unrecorded (INVALID_ENTITY counted as a failure): any tenant escaped
    # its limits by a long enough name.
    mw = RateLimitMiddleware(app, port=sidecar.port, record_deadline=5.0, rate_limit_headers=False)
    await mw.client.open()
    try:
        for _ in range(3):
            sent = await call(mw, "a" * 1025)
            assert sent[0]["status"] == 400
            assert b"invalid_tenant" in sent[1]["body"]
        assert mw.failures == 0
        assert (await call(mw, "a" * 1024))[0]["status"] == 200
    finally:
        await mw.client.close()


async def test_a_server_that_reads_nothing_loses_the_connection_instead_of_growing_the_buffer() -> None:
    # The transport's buffer grew without bound (100 MB in 10 s of record calls) and the connection looked alive.
    release = asyncio.Event()

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        n, cid = struct.unpack(">II", await r.readexactly(8))
        await r.readexactly(n - 4)
        raw = msgpack.packb({"type": "HelloOk", "protocol_version": 1, "server_version": "reads-nothing"})
        w.write(struct.pack(">II", len(raw) + 4, cid) + raw)
        await release.wait()  # and never reads again
        w.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncQuotaClient(port=port, max_pending=1_000_000, request_timeout=120) as client:
            user = "u" * 1000
            calls = []
            # 48 MiB of frames: far past what the kernel's buffers take, and past the client's bound.
            for i in range(48 * 1024):
                if not client.connected:
                    break
                calls.append(client.record_request(user, None))
                if i % 256 == 0:
                    await asyncio.sleep(0)
            assert not client.connected, "the buffer for a peer that reads nothing is bounded: the connection is lost"
            with pytest.raises(RivvenError) as e:
                await calls[0]
            assert e.value.code == "CONNECTION_CLOSED"
            for c in calls:
                if c.done():
                    c.exception()
                else:
                    c.cancel()
    finally:
        release.set()
        server.close()


async def test_connections_that_die_right_after_hello_are_redialled_with_backoff() -> None:
    # A server that accepts, answers Hello and closes, forever, was redialled at once each time: 2400 connections
    # a second and most of a core.
    connects = 0
    sixth = asyncio.Event()

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal connects
        connects += 1
        if connects == 6:
            sixth.set()
        n, cid = struct.unpack(">II", await r.readexactly(8))
        await r.readexactly(n - 4)
        raw = msgpack.packb({"type": "HelloOk", "protocol_version": 1, "server_version": "closes"})
        w.write(struct.pack(">II", len(raw) + 4, cid) + raw)
        await w.drain()
        w.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        async with AsyncQuotaClient(port=port, initial_backoff=0.05, max_backoff=0.2) as client:
            started = loop.time()
            await sixth.wait()
            # Redials 2..6 each waited at least its backoff: 0.05 + 0.1 + 0.2 + 0.2.
            assert loop.time() - started >= 0.55
            assert client.stats["connects"] <= 6
    finally:
        server.close()


class _OddUsage:
    def __init__(self, limit: Any, rate: Any) -> None:
        self.row = {"quota_type": "request_rate", "client_id": None, "limit": limit, "rate": rate}

    def record_request(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(OK_RESULT)
        return fut

    async def describe_usage(self, entities: list[tuple[str, str]], **kwargs: Any) -> list[dict[str, Any]]:
        return [{**self.row, "user": entities[0][1]}]


@pytest.mark.parametrize(("limit", "rate"), [(math.inf, 1.0), (math.nan, 1.0), (5, math.inf), ("5", 1.0), (None, 1.0)])
async def test_a_usage_row_the_headers_cannot_show_never_fails_a_request(limit: Any, rate: Any) -> None:
    # limit inf from the sidecar made every later request of the tenant raise OverflowError (a 500).
    mw = RateLimitMiddleware(app, client=_OddUsage(limit, rate))  # type: ignore[arg-type]
    assert (await call(mw, "t"))[0]["status"] == 200
    for task in list(mw._tasks):
        await task  # the background refresh, done
    sent = await call(mw, "t")
    assert sent[0]["status"] == 200
    assert not any(name == b"x-ratelimit-limit" for name, _ in sent[0]["headers"])


async def test_calls_with_a_timeout_each_of_their_own_keep_no_queue_per_value() -> None:
    # One deadline queue per distinct timeout was kept forever and walked on every call: quadratic, unbounded.
    peer = Peer()
    peer.reply = lambda cid: {"type": "Ok", "throttle_time_ms": 0}
    port = await peer.start()
    try:
        async with AsyncQuotaClient(port=port) as client:
            for i in range(100):
                await client.record_request("u", None, timeout=5 + i / 1000)
            assert len(client._deadlines) == 0
    finally:
        peer.close()
