"""Every vector of conformance/vectors (conformance/README.md, "Vectors") against this client."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

from rivven import ERROR_CODES, RETRIABLE_CODES, AsyncBrokerQuotas, AsyncQuotaClient, RivvenError
from rivven.protocol import decode_body

from .harness import CONFORMANCE


def _vectors(name: str) -> list[dict[str, Any]]:
    doc = json.loads((CONFORMANCE / "vectors" / name).read_text(encoding="utf-8"))
    assert doc["format"] == 1
    vectors: list[dict[str, Any]] = doc["vectors"]
    return vectors


REQUESTS = _vectors("requests.json")
REPLIES = _vectors("replies.json") + _vectors("errors.json")
HELLO_OK = msgpack.packb({"type": "HelloOk", "protocol_version": 1, "server_version": "peer"})


def _frame(cid: int, body: bytes) -> bytes:
    return struct.pack(">II", len(body) + 4, cid) + body


class Peer:
    """Answers each connection's Hello, then captures every later frame and answers it with ``reply`` (its
    correlation id replaced by the call's, except 0, sent as is and followed by closing the connection)."""

    def __init__(self) -> None:
        self.captured: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.reply: bytes | None = None
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        try:
            while True:
                length, cid = struct.unpack(">II", await reader.readexactly(8))
                body = await reader.readexactly(length - 4)
                if first:
                    first = False
                    writer.write(_frame(cid, HELLO_OK))
                    continue
                self.captured.put_nowait((length, body))
                if self.reply is not None:
                    rcid, rbody = struct.unpack(">I", self.reply[4:8])[0], self.reply[8:]
                    writer.write(self.reply if rcid == 0 else _frame(cid, rbody))
                    if rcid == 0:
                        await writer.drain()
                        writer.close()
                        return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    p = Peer()
    await p.start()
    yield p
    assert p.server is not None
    p.server.close()


def _make_call(client: AsyncQuotaClient, method: str, a: dict[str, Any]) -> Any:
    if method == "hello":
        return client.hello()
    if method == "ping":
        return client.ping()
    if method == "recordProduce":
        return client.record_produce(a.get("user"), a.get("client_id"), a["bytes"], admit=a.get("admit", False))
    if method == "recordConsume":
        group = a.get("consumer_group")
        return client.record_consume(a.get("user"), a.get("client_id"), group, a["bytes"], admit=a.get("admit", False))
    if method == "recordRequest":
        return client.record_request(a.get("user"), a.get("client_id"), a.get("count", 1), admit=a.get("admit", False))
    if method == "recordUsage":
        usage = client.record_usage(
            a.get("user"), a.get("client_id"), a["resource"], a.get("amount", 1), admit=a.get("admit", False)
        )
        return usage
    if method == "describeQuotas":
        return client.describe_quotas(a.get("entities"))
    if method == "alterQuotas":
        return client.alter_quotas(a["alterations"], validate_only=a.get("validate_only", False))
    if method == "describeUsage":
        return client.describe_usage(a.get("entities"), top=a.get("top"), sort_by=a.get("sort_by"))
    if method == "resetUsage":
        return client.reset_usage(a["entities"])
    if method == "acquireLease":
        return client.acquire_lease(a.get("user"), a.get("client_id"), ttl_ms=a.get("ttl_ms"))
    if method == "releaseLease":
        return client.release_lease(a["lease_id"])
    if method == "describeViolations":
        return client.describe_violations(
            since_ms=a.get("since_ms"), entities=a.get("entities"), types=a.get("types"), limit=a.get("limit")
        )
    if method == "describeFleet":
        return client.describe_fleet()
    raise AssertionError(f"unknown method {method}")


@pytest.mark.parametrize("v", REQUESTS, ids=[v["name"] for v in REQUESTS])
async def test_request_vector(v: dict[str, Any], peer: Peer) -> None:
    frame = bytes.fromhex(v["frame"])
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert decode_body(frame[8:]) == v["object"]
    args = v["call"]["args"]
    options = {k: args[k] for k in ("client_name", "token") if k in args and v["call"]["method"] == "hello"}
    client = await AsyncQuotaClient.connect(port=peer.port, **options)
    try:
        call = asyncio.ensure_future(_make_call(client, v["call"]["method"], args))
        length, body = await asyncio.wait_for(peer.captured.get(), 10)
        assert length == len(body) + 4
        assert msgpack.unpackb(body) == v["object"]
        if v.get("exact"):
            assert body == frame[8:]
    finally:
        await client.close()
    with pytest.raises(RivvenError):
        await call


BROKER_CALLS = {"RecordProduce", "RecordConsume", "RecordRequest", "RecordUsage"}
CALL_FOR = {
    "Hello": ("hello", {}),
    "Ping": ("ping", {}),
    "RecordProduce": ("recordProduce", {"user": "u", "bytes": 1}),
    "RecordConsume": ("recordConsume", {"user": "u", "consumer_group": "g", "bytes": 1}),
    "RecordRequest": ("recordRequest", {"user": "u"}),
    "RecordUsage": ("recordUsage", {"user": "u", "resource": "orders"}),
    "DescribeQuotas": ("describeQuotas", {}),
    "AlterQuotas": ("alterQuotas", {"alterations": []}),
    "DescribeUsage": ("describeUsage", {}),
    "ResetUsage": ("resetUsage", {"entities": [["user", "u"]]}),
    "AcquireLease": ("acquireLease", {"user": "u"}),
    "ReleaseLease": ("releaseLease", {"lease_id": "l"}),
    "DescribeViolations": ("describeViolations", {}),
    "DescribeFleet": ("describeFleet", {}),
    "*": ("ping", {}),
}


def _record_view(r: Any) -> dict[str, Any]:
    if r.denied is not None:
        return {"denied": {"entity": r.denied.entity, "reason": r.denied.reason}}
    view: dict[str, Any] = {"throttle_time_ms": r.throttle_time_ms}
    if r.quota_type is not None:
        view |= {"quota_type": r.quota_type, "entity": r.entity, "recorded": r.recorded, "period": r.period}
    return view


@pytest.mark.parametrize("v", REPLIES, ids=[v["name"] for v in REPLIES])
async def test_reply_vector(v: dict[str, Any], peer: Peer) -> None:
    frame = bytes.fromhex(v["frame"])
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert decode_body(frame[8:]) == v["object"]
    expect = v.get("expect", {})
    peer.reply = frame
    method, args = CALL_FOR[v["for"]]
    client = await AsyncQuotaClient.connect(port=peer.port, request_timeout=10)
    try:
        calls = [asyncio.ensure_future(_make_call(client, method, args)) for _ in range(2 if v["for"] == "*" else 1)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if "error" in expect:
                e = expect["error"]
                assert isinstance(result, RivvenError), result
                assert (result.code, result.retriable) == (e["code"], e["retriable"])
                if "index" in e:
                    assert result.index == e["index"]
            else:
                assert not isinstance(result, BaseException), result
                if "record" in expect:
                    assert _record_view(result) == expect["record"]
                if "lease" in expect:
                    lease = {"granted": result.granted}
                    if not result.granted:
                        lease |= {"throttle_time_ms": result.throttle_time_ms, "entity": result.entity}
                    assert lease == expect["lease"]
        if "broker" in expect:
            await client.ensure_connected()
            quotas = AsyncBrokerQuotas(client, record_deadline=10)
            call = {
                "RecordProduce": "produce",
                "RecordConsume": "fetch",
                "RecordRequest": "request",
                "RecordUsage": "usage",
            }[v["for"]]
            answer = await {
                "produce": lambda: quotas.produce("u", None, 1),
                "fetch": lambda: quotas.fetch("u", None, "g", 1),
                "request": lambda: quotas.request("u", None),
                "usage": lambda: quotas.usage("u", None, "orders", 1),
            }[call]()
            assert answer == expect["broker"]
            assert quotas.failures == (1 if "error" in expect else 0)
    finally:
        await client.close()


def test_error_table_is_the_kits() -> None:
    doc = json.loads((CONFORMANCE / "vectors" / "error-codes.json").read_text(encoding="utf-8"))
    codes = {c["code"]: c for c in doc["codes"]}
    assert set(codes) == set(ERROR_CODES)
    assert {c for c, e in codes.items() if e["retriable"]} == RETRIABLE_CODES
    assert all(ERROR_CODES[c] == e["meaning"] for c, e in codes.items())
