"""Every scenario of conformance/scenarios.json, driven through the harness (conformance/README.md)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rivven import AsyncBrokerQuotas, AsyncQuotaClient, BreakerOptions, RivvenError

from .harness import CONFORMANCE, Harness

SCENARIOS: dict[str, dict[str, Any]] = json.loads((CONFORMANCE / "scenarios.json").read_text(encoding="utf-8"))[
    "scenarios"
]


def _step(quotas: AsyncBrokerQuotas, s: dict[str, Any]) -> Awaitable[int]:
    if s["call"] == "produce":
        return quotas.produce(s["user"], s["client_id"], s["bytes"])
    if s["call"] == "fetch":
        return quotas.fetch(s["user"], s["client_id"], s["consumer_group"], s["bytes"])
    return quotas.request(s["user"], s["client_id"])


def _broker(client: AsyncQuotaClient, b: dict[str, Any], **kw: Any) -> AsyncBrokerQuotas:
    breaker = BreakerOptions(b.get("failure_threshold", 5), b.get("reset_timeout_ms", 1000) / 1000)
    return AsyncBrokerQuotas(client, record_deadline=b["record_deadline_ms"] / 1000, breaker=breaker, **kw)


def test_every_scenario_is_driven() -> None:
    assert set(SCENARIOS) == {
        "throttles",
        "in_flight",
        "sidecar_killed",
        "sidecar_stopped",
        "auth",
        "tls",
        "mtls",
        "denied",
        "hostile",
    }


async def test_throttles(harness: Harness) -> None:
    sc = SCENARIOS["throttles"]
    s = harness.cmd("start_sidecar", **sc["sidecar"])
    try:
        async with AsyncQuotaClient(port=s["port"]) as client:
            await client.alter_quotas(sc["setup"])
            quotas = _broker(client, sc["broker"])
            answers = []
            for step in sc["steps"]:
                if "advance_ms" in step:
                    harness.cmd("advance_clock", sidecar=s["sidecar"], ms=step["advance_ms"])
                answers.append(await _step(quotas, step))
            assert answers == [step["expect"] for step in sc["steps"]]
            assert quotas.failures == 0
        assert harness.cmd("reference", scenario="throttles")["answers"] == answers
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


async def test_in_flight(harness: Harness) -> None:
    sc = SCENARIOS["in_flight"]
    s = harness.cmd("start_sidecar", **sc["sidecar"])
    try:
        c = sc["client"]
        timeout = c["request_timeout_ms"] / 1000
        async with AsyncQuotaClient(port=s["port"], max_pending=c["max_pending"], request_timeout=timeout) as client:
            await client.alter_quotas(sc["setup"])
            quotas = _broker(client, {"record_deadline_ms": c["request_timeout_ms"]})
            order: list[int] = []

            async def one(i: int) -> int:
                answer = await _step(quotas, sc["call"])
                order.append(i)
                return answer

            tasks = [asyncio.ensure_future(one(i)) for i in range(sc["calls"])]
            answers = await asyncio.gather(*tasks)
            assert order == list(range(sc["calls"]))
            assert quotas.failures == 0
        reference = harness.cmd("reference", scenario="in_flight")["answers"]
        assert answers == reference
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


@pytest.mark.parametrize("name", ["sidecar_killed", "sidecar_stopped"])
async def test_sidecar_away_fails_open_and_recovers(harness: Harness, name: str) -> None:
    sc = SCENARIOS[name]
    s = harness.cmd("start_sidecar", **sc["sidecar"])
    try:
        async with AsyncQuotaClient(port=s["port"], initial_backoff=0.01, max_backoff=0.1) as client:
            quotas = _broker(client, sc["broker"])
            await client.ping()  # the connection is up and the sidecar warm
            assert await quotas.request("u", None) == 0
            harness.cmd("signal", sidecar=s["sidecar"], signal=sc["signal"])
            failures = quotas.failures  # a loaded machine may have made the first call late: count from here
            for _ in range(sc["calls"]):
                started = time.monotonic()
                assert await quotas.produce("u", None, 1) == 0
                assert (time.monotonic() - started) * 1000 <= sc["within_ms"]
            assert quotas.failures - failures == sc["calls"]
            assert quotas.short_circuited > 0 and quotas.breaker.opened >= 1
            if sc["signal"] == "KILL":
                harness.cmd("restart", sidecar=s["sidecar"])
            else:
                harness.cmd("signal", sidecar=s["sidecar"], signal="CONT")
            deadline = time.monotonic() + sc["recover_within_ms"] / 1000
            for _ in iter(int, 1):
                await quotas.request("u", None)
                if quotas.breaker.state == "closed" and client.connected:
                    break
                assert time.monotonic() < deadline, "the breaker did not close"
                await asyncio.sleep(0.01)
            # A call answered by the sidecar is not a failure (retried: a loaded machine can make one late).
            for _ in iter(int, 1):
                failures = quotas.failures
                assert await quotas.request("u", None) == 0
                if quotas.failures == failures:
                    break
                assert time.monotonic() < deadline, "no call was answered"
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


async def _outcome(connect: Callable[[], Awaitable[AsyncQuotaClient]], call: str) -> str:
    """ "ok", or the code of the error raised by the connect or the call."""
    try:
        client = await connect()
    except RivvenError as err:
        return err.code
    try:
        if call == "produce":
            await client.record_produce("u", None, 1)
        elif call == "describeQuotas":
            await client.describe_quotas()
        elif call == "alterQuotas":
            alteration = {"entity": [("user", "u")], "quota_key": "request_rate", "quota_value": 1}
            await client.alter_quotas([alteration], validate_only=True)  # type: ignore[list-item]
        else:
            await client.ping()
        return "ok"
    except RivvenError as err:
        return err.code
    finally:
        await client.close()


async def test_auth(harness: Harness) -> None:
    sc = SCENARIOS["auth"]
    s = harness.cmd("start_sidecar", **sc["sidecar"])
    try:
        for case in sc["cases"]:
            token = None if case["token"] is None else s["tokens"].get(case["token"], "rvn_not_a_token")

            def connect(token: str | None = token) -> Awaitable[AsyncQuotaClient]:
                return AsyncQuotaClient.connect(port=s["port"], token=token, connect_attempts=1)

            assert await _outcome(connect, case["call"]) == case.get("expect", case.get("expect_error")), case
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


def _context(tls: dict[str, str], trust_ca: bool, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls["ca"] if trust_ca else None)
    if cert is not None:
        ctx.load_cert_chain(tls[f"{cert}_cert"], tls[f"{cert}_key"])
    return ctx


async def test_tls(harness: Harness) -> None:
    sc = SCENARIOS["tls"]
    s = harness.cmd("start_sidecar", **sc["sidecar"])
    try:
        for case in sc["cases"]:
            for name in (s["tls"]["server_name"], None):  # the certificate's name, or the host 127.0.0.1

                def connect(name: str | None = name, trust: bool = case["trust_ca"]) -> Awaitable[AsyncQuotaClient]:
                    ctx = _context(s["tls"], trust, None)
                    return AsyncQuotaClient.connect(
                        port=s["port"], ssl=ctx, server_hostname=name, connect_attempts=2, initial_backoff=0.01
                    )

                assert await _outcome(connect, "ping") == case.get("expect", case.get("expect_error")), case
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


async def test_mtls(harness: Harness) -> None:
    sc = SCENARIOS["mtls"]
    s = harness.cmd("start_sidecar", **sc["sidecar"])
    try:
        for case in sc["cases"]:
            token = None if case["token"] is None else s["tokens"][case["token"]]

            def connect(
                token: str | None = token, cert: str | None = case["client_cert"]
            ) -> Awaitable[AsyncQuotaClient]:
                ctx = _context(s["tls"], True, cert)
                return AsyncQuotaClient.connect(
                    port=s["port"],
                    ssl=ctx,
                    server_hostname=s["tls"]["server_name"],
                    token=token,
                    connect_attempts=2,
                    initial_backoff=0.01,
                )

            assert await _outcome(connect, case["call"]) == case.get("expect", case.get("expect_error")), case
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


async def test_denied(harness: Harness) -> None:
    sc = SCENARIOS["denied"]
    s = harness.cmd("start_sidecar", **sc["sidecar"])
    try:
        async with AsyncQuotaClient(port=s["port"]) as client:
            await client.alter_quotas([sc["block"]])
            reported: list[tuple[str, str]] = []
            quotas = _broker(client, {"record_deadline_ms": 5000}, on_denied=lambda e, r: reported.append((e, r)))
            user = sc["block"]["entity"][0][1]
            assert await quotas.produce(user, None, 1) == -1
            assert await quotas.fetch(user, None, "g", 1) == -1
            assert await quotas.request(user, None) == -1
            assert reported == [(sc["expect_entity"], sc["expect_reason"])] * 3
            assert quotas.failures == 0
            await client.alter_quotas([{**sc["block"], "quota_value": None}])
            assert await quotas.produce(user, None, 1) == 0
            assert await quotas.request(user, None) == 0
    finally:
        harness.cmd("stop", sidecar=s["sidecar"])


@pytest.mark.parametrize("mode", SCENARIOS["hostile"]["modes"], ids=lambda m: m["mode"])
async def test_hostile(harness: Harness, mode: dict[str, Any]) -> None:
    h = harness.cmd("start_hostile", mode=mode["mode"])
    try:
        within = mode["within_ms"] / 1000
        started = time.monotonic()
        if mode["mode"] == "silent_hello":
            with pytest.raises(RivvenError) as info:
                await AsyncQuotaClient.connect(port=h["port"], connect_timeout=mode["connect_timeout_ms"] / 1000)
            assert info.value.code in mode["connect_codes"]
            assert time.monotonic() - started <= within
            return
        timeout = mode.get("request_timeout_ms", 5000) / 1000
        client = await AsyncQuotaClient.connect(port=h["port"], max_frame_bytes=1 << 20, request_timeout=timeout)
        try:
            with pytest.raises(RivvenError) as info:
                await client.record_produce("u", None, 1)
            assert info.value.code in mode["codes"]
            assert time.monotonic() - started <= within
            quotas = AsyncBrokerQuotas(client)
            started = time.monotonic()
            assert await quotas.produce("u", None, 1) == 0
            assert time.monotonic() - started <= within
            if mode["mode"] == "oversized":
                deadline = time.monotonic() + within
                for _ in iter(int, 1):  # the client closed the connection rather than buffer the frame
                    stats = harness.cmd("hostile_stats", hostile=h["hostile"])
                    if stats["closed_by_peer"] or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.01)
                assert stats["closed_by_peer"] is True
                assert stats["bytes_sent"] <= mode["max_bytes_accepted"]
        finally:
            await client.close()
    finally:
        harness.cmd("stop", hostile=h["hostile"])
