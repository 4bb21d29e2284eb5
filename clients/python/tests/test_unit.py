"""Fast unit tests: the frame cutter, reply decoding, the error table against the docs, the breaker."""

from __future__ import annotations

import re
from typing import Any

import msgpack
import pytest

from rivven import ERROR_CODES, RETRIABLE_CODES, BreakerOptions, CircuitBreaker, RivvenError
from rivven._aio_conn import Connection
from rivven.protocol import (
    OK_BODY,
    OK_RESULT,
    decode_body,
    decode_lease,
    decode_record,
    encode_record,
    encode_usage,
    frame,
)

from .sidecar import REPO


class _Owner:
    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.closed = 0

    def _on_reply(self, conn: Connection, cid: int, raw: bytes) -> None:
        self.frames.append((cid, raw))

    def _on_close(self, conn: Connection) -> None:
        self.closed += 1


class _Transport:
    aborted = False

    def abort(self) -> None:
        self.aborted = True


def _conn(owner: _Owner, max_frame: int = 1024) -> Connection:
    conn = Connection(owner, max_frame)
    conn.transport = _Transport()  # type: ignore[assignment]
    return conn


FRAMES = [frame(1, OK_BODY), frame(2, msgpack.packb({"type": "Pong"})), frame(0xFFFFFFFF, b"\x80")]
STREAM = b"".join(FRAMES)
EXPECTED = [(1, OK_BODY), (2, msgpack.packb({"type": "Pong"})), (0xFFFFFFFF, b"\x80")]


async def test_frames_whole_byte_by_byte_and_split_everywhere() -> None:
    owner = _Owner()
    _conn(owner).data_received(STREAM)
    assert owner.frames == EXPECTED
    owner = _Owner()
    conn = _conn(owner)
    for i in range(len(STREAM)):
        conn.data_received(STREAM[i : i + 1])
    assert owner.frames == EXPECTED
    for cut in range(1, len(STREAM)):
        owner = _Owner()
        conn = _conn(owner)
        conn.data_received(STREAM[:cut])
        conn.data_received(STREAM[cut:])
        assert owner.frames == EXPECTED, cut


async def test_an_oversized_or_short_length_aborts_before_buffering() -> None:
    for length in (3, 1025, 2**31):
        owner = _Owner()
        conn = _conn(owner)
        conn.data_received(FRAMES[0] + length.to_bytes(4, "big"))
        assert owner.frames == [EXPECTED[0]] and conn.closed and conn.transport.aborted  # type: ignore[union-attr]


def test_record_requests_are_the_fast_path_encoding() -> None:
    # docs/protocol.md's worked example, as the Node client writes it (a fixmap, not map16).
    body = encode_record("RecordProduce", "alice", "app-1", None, 1024, False)
    expected = b"\x84\xa4type\xadRecordProduce\xa4user\xa5alice\xa9client_id\xa5app-1\xa5bytes\xcd\x04\x00"
    assert body == expected
    assert encode_record("RecordRequest", None, None, "ignored", 1, True) == msgpack.packb(
        {"type": "RecordRequest", "count": 1, "admit": True}
    )


def test_usage_requests_and_what_they_refuse_unsent() -> None:
    assert msgpack.unpackb(encode_usage("alice", None, "orders", 1, False)) == {
        "type": "RecordUsage",
        "resource": "orders",
        "user": "alice",
    }
    assert msgpack.unpackb(encode_usage(None, "app", "o_2", 5, True)) == {
        "type": "RecordUsage",
        "resource": "o_2",
        "client_id": "app",
        "amount": 5,
        "admit": True,
    }
    for resource, amount in [("", 1), ("Orders", 1), ("1o", 1), ("o-r", 1), ("o" * 33, 1), ("orders", 0)]:
        with pytest.raises(RivvenError) as info:
            encode_usage("a", None, resource, amount, False)
        assert info.value.code == "INVALID_REQUEST", (resource, amount)
    for amount in (2**53, True, 1.5):
        with pytest.raises(RivvenError):
            encode_usage("a", None, "orders", amount, False)  # type: ignore[arg-type]


def test_throttled_period_and_usage_keys() -> None:
    throttled = {"type": "Throttled", "throttle_time_ms": 5, "quota_type": "orders_rate", "entity": "e"}
    assert decode_record(throttled, "orders_rate").period == "s"
    assert decode_record(throttled | {"period": "d"}, "orders_rate").period == "d"
    for body, key in [
        (throttled, None),
        (throttled, "services_rate"),
        (throttled | {"quota_type": "request_rate"}, "orders_rate"),
        (throttled | {"period": "w"}, "orders_rate"),
        (throttled | {"period": None}, "orders_rate"),
    ]:
        with pytest.raises(RivvenError) as info:
            decode_record(body, key)
        assert info.value.code == "UNEXPECTED_REPLY"


def test_reply_decoding() -> None:
    assert decode_record(decode_body(OK_BODY)) is OK_RESULT
    throttled = {"type": "Throttled", "throttle_time_ms": 250.0, "quota_type": "request_rate", "entity": "e"}
    r = decode_record(throttled | {"recorded": True})
    assert (r.throttle_time_ms, r.quota_type, r.entity, r.recorded) == (250, "request_rate", "e", True)
    d = decode_record({"type": "Denied", "entity": "user:m", "reason": "r"})
    assert d.denied is not None and d.denied.reason == "r"
    bad: list[dict[str, Any]] = [
        {"type": "Pong"},
        throttled | {"quota_type": "max_in_flight"},
        throttled | {"throttle_time_ms": 1.5},
        {"type": "Denied", "entity": 1, "reason": "r"},
    ]
    for body in bad:
        with pytest.raises(RivvenError) as info:
            decode_record(body)
        assert info.value.code == "UNEXPECTED_REPLY"
    for raw in (b"\xc1", b"\x93\x01\x02\x03", msgpack.packb({"type": 1})):
        with pytest.raises(RivvenError) as info:
            decode_body(raw)
        assert info.value.code == "UNEXPECTED_REPLY"
    lease = decode_lease({"type": "Throttled", "throttle_time_ms": 5, "quota_type": "max_in_flight", "entity": "e"})
    assert not lease.granted and lease.throttle_time_ms == 5


def test_error_table_matches_the_docs_and_the_typescript_table() -> None:
    docs = (REPO / "docs" / "protocol.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (.*) \|$", docs, re.M))
    assert set(rows) == set(ERROR_CODES)
    assert {code for code, meaning in rows.items() if "*Retriable" in meaning} == RETRIABLE_CODES
    ts = (REPO / "src" / "protocol" / "error-codes.ts").read_text()
    # A long meaning starts on the next line (biome wraps it): the code is a key followed by a string.
    assert set(re.findall(r"^  ([A-Z_]+):\s*'", ts, re.M)) == set(ERROR_CODES)
    assert RivvenError("NOT_A_CODE", "m").code == "INTERNAL_ERROR"
    assert RivvenError("TIMEOUT", "m").retriable and not RivvenError("INVALID_ENTITY", "m").retriable


def test_breaker_opens_probes_once_and_closes() -> None:
    now = [0.0]
    b = CircuitBreaker(BreakerOptions(failure_threshold=3, reset_timeout=1.0), lambda: now[0])
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    b.success()  # a success resets the count
    for _ in range(3):
        b.failure()
    assert b.state == "open" and b.opened == 1 and not b.allow()
    now[0] = 0.999
    assert not b.allow()
    now[0] = 1.0
    assert b.allow() and b.state == "half-open"
    assert not b.allow()  # one probe at a time
    b.failure()  # the probe failed: open for another reset_timeout
    assert b.state == "open" and b.opened == 2 and not b.allow()
    now[0] = 2.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow() and b.allow()
