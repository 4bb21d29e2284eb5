"""The wire of docs/protocol.md: frames, request bodies, and typed replies. No sockets here.

length: u32 BE | correlation_id: u32 BE | body: one msgpack map      (length counts id + body)
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict, cast

import msgpack

from .errors import RivvenError

HEADER: Final = struct.Struct(">II")
HEADER_BYTES: Final = 8
PROTOCOL_VERSION: Final = 1
#: Replies larger than this close the connection (a hostile or broken peer must not make us buffer 2 GiB).
DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024 * 1024

QUOTA_KEYS: Final = frozenset({"produce_bytes_rate", "consume_bytes_rate", "request_rate"})

#: The period of a rate: a key may carry several (``100/s`` and ``10000/d``), one bucket per period, and a
#: Throttled reply names the one that binds. The wire leaves ``s`` out.
Period = Literal["s", "min", "h", "d"]
PERIODS: Final[frozenset[str]] = frozenset({"s", "min", "h", "d"})

Body = dict[str, Any]
Component = tuple[str, str | None] | list[str | None]


class QuotaAlteration(TypedDict, total=False):
    """One alteration: ``quota_value`` None removes the value; tier takes a tier name, blocked a reason."""

    entity: list[Component]
    quota_key: str
    quota_value: int | str | None
    shadow: bool


class QuotaEntry(TypedDict):
    entity: list[list[str | None]]
    quotas: dict[str, int | str]


@dataclass(frozen=True, slots=True)
class Denied:
    entity: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Ok is ``throttle_time_ms`` 0; Throttled names the bucket that needs the longest wait; ``denied`` is set
    when the principal is blocked (reject the request)."""

    throttle_time_ms: int
    recorded: bool = True
    quota_type: str | None = None
    entity: str | None = None
    denied: Denied | None = None
    #: Throttled only: the period of the rate that needs the longest wait (``"s"`` when the reply names none).
    period: Period | None = None


@dataclass(frozen=True, slots=True)
class LeaseResult:
    """Granted (``lease_id``, ``ttl_ms``), or refused with the wait until the group's earliest lease ends."""

    granted: bool
    lease_id: str | None = None
    ttl_ms: int | None = None
    throttle_time_ms: int = 0
    entity: str | None = None


@dataclass(frozen=True, slots=True)
class HelloOk:
    protocol_version: int
    server_version: str


#: Shared by every Ok answer: the reply to nearly every record call.
OK_RESULT: Final = RecordResult(0)
#: The server writes Ok from a template: these bytes every time, so a client can match them without decoding.
OK_BODY: Final = b"\xde\x00\x02\xa4type\xa2Ok\xb0throttle_time_ms\x00"

PRODUCE: Final = "RecordProduce"
CONSUME: Final = "RecordConsume"
REQUEST: Final = "RecordRequest"

_pack = msgpack.Packer(use_bin_type=True).pack


def frame(correlation_id: int, body: bytes) -> bytes:
    return HEADER.pack(len(body) + 4, correlation_id) + body


def encode_body(body: Body) -> bytes:
    """Absent (None) top-level fields are left out, as the protocol wants for optional fields."""
    return _pack({k: v for k, v in body.items() if v is not None})


def encode_record(
    kind: str,
    user: str | None,
    client_id: str | None,
    group: str | None,
    amount: int,
    admit: bool,
) -> bytes:
    """A record request body, byte for byte what the server's fast path reads (conformance README, "exact"):
    a fixmap with keys type, user, client_id, consumer_group, bytes|count, admit (only when true); absent names
    left out; msgpack-python writes fixstr/str8/str16 and the smallest uint, as the Node client does."""
    body: Body = {"type": kind}
    if user is not None:
        body["user"] = user
    if client_id is not None:
        body["client_id"] = client_id
    if group is not None and kind == CONSUME:
        body["consumer_group"] = group
    body["count" if kind == REQUEST else "bytes"] = amount
    if admit:
        body["admit"] = True
    return _pack(body)


def encode_usage(user: str | None, client_id: str | None, resource: str, amount: int, admit: bool) -> bytes:
    """A RecordUsage body as the Node client writes it (conformance README): type, resource, user, client_id,
    amount (left out when 1, the default), admit (only when true). A resource name off the grammar or an amount
    outside 1..2^53-1 is INVALID_REQUEST here, before anything is sent."""
    if not (isinstance(resource, str) and RESOURCE_NAME.fullmatch(resource)):
        raise RivvenError(
            "INVALID_REQUEST", "resource must be 1-32 characters of a-z, 0-9 and _, starting with a letter"
        )
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_SAFE_INT:
        raise RivvenError("INVALID_REQUEST", "amount must be an integer from 1 to 2^53-1")
    body: Body = {"type": "RecordUsage", "resource": resource}
    if user is not None:
        body["user"] = user
    if client_id is not None:
        body["client_id"] = client_id
    if amount != 1:
        body["amount"] = amount
    if admit:
        body["admit"] = True
    return _pack(body)


#: A resource's name (quotas.resources): 1-32 characters of a-z, 0-9 and _, starting with a letter.
RESOURCE_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")


def hello(client_name: str | None, token: str | None) -> Body:
    return {"type": "Hello", "protocol_version": PROTOCOL_VERSION, "client_name": client_name, "token": token}


def decode_body(raw: bytes) -> Body:
    """A reply body; UNEXPECTED_REPLY when it is not a msgpack map with a string type."""
    try:
        body = msgpack.unpackb(raw, raw=False)
    except Exception as err:  # msgpack raises several unrelated types for malformed input
        raise RivvenError("UNEXPECTED_REPLY", f"undecodable reply ({type(err).__name__})") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise RivvenError("UNEXPECTED_REPLY", "the reply is not a msgpack map with a string type")
    return body


def decode_error(body: Body) -> RivvenError:
    code = body.get("code")
    index = body.get("index")
    return RivvenError(
        code if isinstance(code, str) else "INTERNAL_ERROR",
        str(body.get("message", code))[:4096],
        int(cast(float, index)) if _is_int(index) else None,
    )


def _is_int(v: object) -> bool:
    # The protocol lets an integer travel as a float64 holding one (msgpackr writes 2^32 and above so).
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _unexpected(msg: str) -> RivvenError:
    return RivvenError("UNEXPECTED_REPLY", msg)


def expect_type(body: Body, type_: str) -> None:
    if body["type"] != type_:
        raise _unexpected(f"expected a {type_} reply, got {str(body['type'])[:64]}")


def int_field(body: Body, field: str) -> int:
    v = body.get(field)
    if not _is_int(v):
        raise _unexpected(f"the reply's {field} is not an integer")
    return int(cast(float, v))


def str_field(body: Body, field: str) -> str:
    v = body.get(field)
    if not isinstance(v, str):
        raise _unexpected(f"the reply's {field} is not a string")
    return v


def list_field(body: Body, field: str) -> list[Any]:
    v = body.get(field)
    if not isinstance(v, list):
        raise _unexpected(f"the reply's {field} is not a list")
    return v


#: The largest integer the protocol carries.
MAX_SAFE_INT = 2**53 - 1


def decode_record(body: Body, usage_key: str | None = None) -> RecordResult:
    """A record reply. ``usage_key``: the call was RecordUsage, so a Throttled names ``<resource>_rate``."""
    t = body["type"]
    if t == "Ok":
        return OK_RESULT
    if t == "Denied":
        return RecordResult(0, False, denied=Denied(str_field(body, "entity"), str_field(body, "reason")))
    if t != "Throttled":
        raise _unexpected(f"expected Ok or Throttled, got {str(t)[:64]}")
    quota_type = str_field(body, "quota_type")
    if quota_type != usage_key if usage_key is not None else quota_type not in QUOTA_KEYS:
        raise _unexpected(f"unknown quota_type {quota_type[:64]}")
    ms = int_field(body, "throttle_time_ms")
    # Throttled means a wait (docs/protocol.md: an int > 0, at most 2^53-1); a broker takes -1 for DENIED, 0 for none.
    if not 0 < ms <= MAX_SAFE_INT:
        raise _unexpected(f"a Throttled reply with throttle_time_ms {ms}")
    period = body.get("period", "s")
    if not isinstance(period, str) or period not in PERIODS:
        raise _unexpected(f"unknown period {str(period)[:64]}")
    return RecordResult(
        ms,
        body.get("recorded") is True,
        quota_type,
        str_field(body, "entity"),
        period=cast(Period, period),
    )


def decode_lease(body: Body) -> LeaseResult:
    if body["type"] == "Throttled":
        return LeaseResult(
            False, throttle_time_ms=int_field(body, "throttle_time_ms"), entity=str_field(body, "entity")
        )
    expect_type(body, "LeaseGranted")
    return LeaseResult(True, lease_id=str_field(body, "lease_id"), ttl_ms=int_field(body, "ttl_ms"))


def decode_hello(body: Body) -> HelloOk:
    expect_type(body, "HelloOk")
    return HelloOk(int_field(body, "protocol_version"), str_field(body, "server_version"))


def entities(components: list[Component] | None) -> list[list[str | None]]:
    return [list(c) for c in components or []]


SortBy = Literal["utilization", "rate"]
