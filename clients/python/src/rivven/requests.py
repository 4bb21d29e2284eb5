"""The admin requests: each function returns the request body and the decoder of its reply, so the blocking
and the asyncio client share every message and differ only in how they wait."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .protocol import (
    Body,
    Component,
    HelloOk,
    LeaseResult,
    QuotaAlteration,
    QuotaEntry,
    SortBy,
    decode_hello,
    decode_lease,
    entities,
    expect_type,
    hello,
    int_field,
    list_field,
)

T = TypeVar("T")
Request = tuple[Body, Callable[[Body], T]]


def _expect(type_: str) -> Callable[[Body], None]:
    def decode(body: Body) -> None:
        expect_type(body, type_)

    return decode


def _count(type_: str, field: str) -> Callable[[Body], int]:
    def decode(body: Body) -> int:
        expect_type(body, type_)
        return int_field(body, field)

    return decode


def _list(type_: str, field: str) -> Callable[[Body], list[Any]]:
    def decode(body: Body) -> list[Any]:
        expect_type(body, type_)
        return list_field(body, field)

    return decode


def _whole(type_: str) -> Callable[[Body], dict[str, Any]]:
    def decode(body: Body) -> dict[str, Any]:
        expect_type(body, type_)
        return {k: v for k, v in body.items() if k != "type"}

    return decode


def hello_request(client_name: str | None, token: str | None) -> Request[HelloOk]:
    return hello(client_name, token), decode_hello


def ping() -> Request[None]:
    return {"type": "Ping"}, _expect("Pong")


def describe_quotas(components: Sequence[Component] | None) -> Request[list[QuotaEntry]]:
    return {"type": "DescribeQuotas", "entities": entities(list(components or []))}, _list("QuotasDescribed", "entries")


def alter_quotas(alterations: Sequence[QuotaAlteration], validate_only: bool) -> Request[int]:
    body = {
        "type": "AlterQuotas",
        "alterations": [_alteration(a) for a in alterations],
        "validate_only": validate_only,
    }
    return body, _count("QuotasAltered", "altered_count")


def _alteration(a: QuotaAlteration) -> dict[str, Any]:
    out: dict[str, Any] = {"entity": entities(list(a["entity"])), "quota_key": a["quota_key"]}
    out["quota_value"] = a.get("quota_value")
    if "shadow" in a:
        out["shadow"] = a["shadow"]
    return out


def describe_usage(
    components: Sequence[Component] | None, top: int | None, sort_by: SortBy | None
) -> Request[list[Any]]:
    body = {"type": "DescribeUsage", "entities": entities(list(components or [])), "top": top, "sort_by": sort_by}
    return body, _list("UsageDescribed", "buckets")


def reset_usage(components: Sequence[Component]) -> Request[int]:
    return {"type": "ResetUsage", "entities": entities(list(components))}, _count("UsageReset", "buckets")


def describe_violations(
    since_ms: int | None,
    components: Sequence[Component] | None,
    types: Sequence[str] | None,
    limit: int | None,
) -> Request[dict[str, Any]]:
    body = {
        "type": "DescribeViolations",
        "since_ms": since_ms,
        "entities": None if components is None else entities(list(components)),
        "types": None if types is None else list(types),
        "limit": limit,
    }
    return body, _whole("ViolationsDescribed")


def describe_fleet() -> Request[dict[str, Any]]:
    return {"type": "DescribeFleet"}, _whole("FleetDescribed")


def acquire_lease(user: str | None, client_id: str | None, ttl_ms: int | None) -> Request[LeaseResult]:
    return {"type": "AcquireLease", "user": user, "client_id": client_id, "ttl_ms": ttl_ms}, decode_lease


def release_lease(lease_id: str) -> Request[None]:
    return {"type": "ReleaseLease", "lease_id": lease_id}, _expect("Ok")
