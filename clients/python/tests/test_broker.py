"""BrokerQuotas and AsyncBrokerQuotas against a real sidecar: throttles, Denied, fail open, the breaker."""

from __future__ import annotations

import asyncio
import signal
import time

from rivven import DENIED, AsyncBrokerQuotas, AsyncQuotaClient, BreakerOptions, BrokerQuotas, QuotaClient

from .sidecar import Sidecar

BLOCK = {"entity": [("user", "mallory")], "quota_key": "blocked", "quota_value": "abuse"}


async def test_async_throttle_denied_and_counters(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port) as client:
        await client.alter_quotas(
            [{"entity": [("user", "alice")], "quota_key": "produce_bytes_rate", "quota_value": 1000}, BLOCK]  # type: ignore[list-item]
        )
        denied: list[tuple[str, str]] = []
        quotas = AsyncBrokerQuotas(client, record_deadline=5, on_denied=lambda e, r: denied.append((e, r)))
        answers = [await quotas.produce("alice", None, 500) for _ in range(3)]
        assert answers[:2] == [0, 0] and answers[2] > 0
        assert await quotas.produce("mallory", None, 1) == DENIED
        assert await quotas.fetch("mallory", None, "g", 1) == DENIED
        assert await quotas.request("mallory", "c") == DENIED
        assert denied == [("user:mallory", "abuse")] * 3
        assert quotas.failures == 0 and quotas.denied == 3


async def test_async_fails_open_within_the_deadline_and_the_breaker_recovers(sidecar: Sidecar) -> None:
    async with AsyncQuotaClient(port=sidecar.port, initial_backoff=0.01, max_backoff=0.05) as client:
        errors: list[Exception] = []
        # A 250 ms deadline: answered calls must not time out on a loaded machine; the bound is what is tested.
        breaker = BreakerOptions(failure_threshold=3, reset_timeout=0.1)
        quotas = AsyncBrokerQuotas(client, record_deadline=0.25, breaker=breaker, on_error=errors.append)
        assert await quotas.produce("a", None, 1) == 0 and quotas.failures == 0
        sidecar.signal(signal.SIGSTOP)
        try:
            for _ in range(10):
                started = time.monotonic()
                assert await quotas.produce("a", None, 1) == 0
                assert time.monotonic() - started < 1.0  # within its deadline, with room for a slow machine
            assert quotas.failures == 10 and quotas.short_circuited > 0
            assert quotas.breaker.opened >= 1
            assert {getattr(e, "code", None) for e in errors} == {"TIMEOUT"}
        finally:
            sidecar.signal(signal.SIGCONT)

        deadline = time.monotonic() + 30
        for _ in iter(int, 1):  # probe until the breaker closes (a probe goes out every reset_timeout)
            await quotas.produce("a", None, 1)
            if quotas.breaker.state == "closed" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        assert quotas.breaker.state == "closed"
        failures = quotas.failures
        assert await quotas.request("a", None) == 0 and quotas.failures == failures


def test_blocking_fails_open_when_killed_and_recovers_after_restart(sidecar: Sidecar) -> None:
    with QuotaClient(port=sidecar.port, initial_backoff=0.01, max_backoff=0.05) as client:
        client.alter_quotas([BLOCK])  # type: ignore[list-item]
        quotas = BrokerQuotas(
            client, record_deadline=0.25, breaker=BreakerOptions(failure_threshold=2, reset_timeout=0.05)
        )
        assert quotas.request("mallory", None) == DENIED
        assert quotas.produce("b", None, 1) == 0
        sidecar.signal(signal.SIGKILL)
        for _ in range(20):
            started = time.monotonic()
            assert quotas.fetch("b", None, None, 1) == 0
            assert time.monotonic() - started < 1.0
        assert quotas.failures == 20 and quotas.breaker.opened >= 1
        sidecar.restart()
        deadline = time.monotonic() + 30
        while quotas.breaker.state != "closed" or not client.connected:
            assert time.monotonic() < deadline
            quotas.produce("b", None, 1)
            time.sleep(0.01)
        assert quotas.request("mallory", None) == DENIED  # the restarted sidecar kept its data
