"""AsyncQuotaClient against a real sidecar."""

from __future__ import annotations

import asyncio
import signal

import pytest

from rivven import AsyncQuotaClient, RivvenError

from .sidecar import Sidecar, eventually


async def test_hello_ping_and_record_ok(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port, client_name="py-test") as client:
        assert client.connected
        ok = await client.hello()
        assert ok.protocol_version == 1 and ok.server_version
        await client.ping()
        r = await client.record_produce("alice", "app-1", 1024)
        assert r.throttle_time_ms == 0 and r.denied is None
    assert not client.connected


async def test_throttled_and_admit(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port) as client:
        n = await client.alter_quotas(
            [{"entity": [("user", "bob")], "quota_key": "produce_bytes_rate", "quota_value": 1000}]
        )
        assert n == 1
        results = [await client.record_produce("bob", None, 1000) for _ in range(3)]
        last = results[-1]
        assert last.throttle_time_ms > 0
        assert last.quota_type == "produce_bytes_rate" and last.entity == "user:bob" and last.recorded
        refused = await client.record_produce("bob", None, 10, admit=True)
        assert refused.throttle_time_ms > 0 and refused.recorded is False


async def test_admin_calls_and_error_index(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port) as client:
        good = {"entity": [("user", "carol")], "quota_key": "request_rate", "quota_value": 7}
        bad = {"entity": [("user", "carol")], "quota_key": "produce_bytes_rate", "quota_value": -1}
        with pytest.raises(RivvenError) as info:
            await client.alter_quotas([good, bad])  # type: ignore[list-item]
        assert info.value.code == "INVALID_QUOTA_VALUE" and info.value.index == 1 and not info.value.retriable
        assert await client.alter_quotas([good], validate_only=True) == 1  # type: ignore[list-item]
        assert [e for e in await client.describe_quotas([("user", "carol")])] == []
        await client.alter_quotas([good])  # type: ignore[list-item]
        entries = await client.describe_quotas([("user", "carol")])
        assert entries == [{"entity": [["user", "carol"]], "quotas": {"request_rate": 7}}]
        await client.record_request("carol", None)
        usage = await client.describe_usage([("user", "carol")])
        assert usage[0]["quota_type"] == "request_rate" and usage[0]["user"] == "carol"
        assert await client.reset_usage([("user", "carol")]) == 1
        violations = await client.describe_violations(limit=10)
        assert violations["summary"]["total"] == 0
        fleet = await client.describe_fleet()
        assert fleet["enabled"] is False
        reply = await client.request({"type": "Ping"})
        assert reply == {"type": "Pong"}
        with pytest.raises(RivvenError) as info:
            await client.request({"type": "NoSuchThing"})
        assert info.value.code == "UNKNOWN_REQUEST_TYPE"


async def test_leases(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port) as client:
        await client.alter_quotas([{"entity": [("user", "dan")], "quota_key": "max_in_flight", "quota_value": 1}])
        first = await client.acquire_lease("dan", ttl_ms=60_000)
        assert first.granted and first.lease_id
        second = await client.acquire_lease("dan")
        assert not second.granted and second.throttle_time_ms > 0
        assert first.lease_id is not None
        await client.release_lease(first.lease_id)
        assert (await client.acquire_lease("dan")).granted


async def test_pipelined_calls_share_writes_and_come_back_in_order(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port) as client:
        await client.alter_quotas([{"entity": [("user", "eve")], "quota_key": "request_rate", "quota_value": 100}])
        writes = client.stats["writes"]
        results = await asyncio.gather(*(client.record_request("eve", None) for _ in range(2000)))
        throttles = [r.throttle_time_ms for r in results]
        # The bucket fills call by call (the conformance in_flight scenario checks each answer on a frozen clock).
        assert throttles[0] == 0 and throttles[-1] > 0
        assert client.stats["writes"] - writes < 20  # 2000 calls of one iteration: a handful of writes


async def test_max_pending_rejects_with_overloaded(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port, max_pending=10) as client:
        calls = [client.record_request("f", None) for _ in range(11)]
        with pytest.raises(RivvenError) as info:
            await calls[-1]
        assert info.value.code == "OVERLOADED" and info.value.retriable
        assert all(r.throttle_time_ms == 0 for r in await asyncio.gather(*calls[:10]))


async def test_timeout_when_the_sidecar_is_stopped(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port) as client:
        sidecar.signal(signal.SIGSTOP)
        try:
            with pytest.raises(RivvenError) as info:
                await client.record_request("g", None, timeout=0.05)
            assert info.value.code == "TIMEOUT" and info.value.retriable
            assert client.pending_count == 0
        finally:
            sidecar.signal(signal.SIGCONT)
        assert (await client.record_request("g", None)).throttle_time_ms == 0


async def test_reconnects_after_a_restart_and_fail_fast_meanwhile(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port, initial_backoff=0.01, max_backoff=0.05) as client:
        assert client.stats["connects"] == 1
        sidecar.signal(signal.SIGKILL)
        await eventually(lambda: not client.connected)  # the loss is seen when the socket closes
        with pytest.raises(RivvenError) as info:
            await client.record_request("h", None, fail_fast=True)
        assert info.value.code == "UNAVAILABLE"
        sidecar.restart()
        # A call without fail_fast waits for the background reconnection, within its timeout.
        assert (await client.record_request("h", None, timeout=10)).throttle_time_ms == 0
        assert client.stats["connects"] == 2


async def test_failed_connect_leaves_nothing_running() -> None:
    with pytest.raises(RivvenError) as info:
        await AsyncQuotaClient.connect(port=1, connect_attempts=2, initial_backoff=0.01)
    assert info.value.code == "CONNECTION_CLOSED" and "127.0.0.1:1" in str(info.value)
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []


async def test_calls_after_close_fail(sidecar: Sidecar) -> None:
    client = await AsyncQuotaClient.connect(port=sidecar.port)
    pending = client.record_request("i", None)
    await client.close()
    with pytest.raises(RivvenError) as info:
        await pending
    assert info.value.code == "CONNECTION_CLOSED"
    with pytest.raises(RivvenError):
        await client.ping()


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="request_timeout must be > 0; max_pending must be an integer >= 1"):
        AsyncQuotaClient(request_timeout=0, max_pending=0)
