"""QuotaClient (blocking) against a real sidecar."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rivven import QuotaClient, RivvenError

from .sidecar import Sidecar


def test_calls_and_context_manager(sidecar: Sidecar) -> None:
    with QuotaClient(port=sidecar.port, client_name="py-blocking") as client:
        assert client.hello().protocol_version == 1
        client.ping()
        assert client.record_produce("alice", "app", 10).throttle_time_ms == 0
        assert client.record_consume("alice", "app", "etl", 10).throttle_time_ms == 0
        assert client.record_request("alice", "app", 3).throttle_time_ms == 0
        n = client.alter_quotas([{"entity": [("user", "u1")], "quota_key": "max_in_flight", "quota_value": 1}])
        assert n == 1
        lease = client.acquire_lease("u1")
        assert lease.granted and lease.lease_id is not None
        assert not client.acquire_lease("u1").granted
        client.release_lease(lease.lease_id)
        assert client.describe_quotas([("user", "u1")])[0]["quotas"] == {"max_in_flight": 1}
        thread = client._thread
    assert thread is not None and not thread.is_alive()  # close() stops the client's thread
    with pytest.raises(RivvenError) as info:
        client.ping()
    assert info.value.code == "CONNECTION_CLOSED"


def test_many_threads_share_one_connection(sidecar: Sidecar) -> None:
    with QuotaClient(port=sidecar.port) as client:
        client.alter_quotas([{"entity": [("user", "t")], "quota_key": "request_rate", "quota_value": 10}])
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(lambda _: client.record_request("t", None), range(500)))
        assert len(results) == 500 and results[0].throttle_time_ms >= 0
        assert max(r.throttle_time_ms for r in results) > 0
        assert client.stats["connects"] == 1


def test_a_caller_never_waits_past_its_timeout(sidecar: Sidecar) -> None:
    with QuotaClient(port=sidecar.port) as client:
        sidecar.signal(signal.SIGSTOP)
        try:
            errors = []

            def call() -> None:
                try:
                    client.record_request("x", None, timeout=0.05)
                except RivvenError as err:
                    errors.append(err.code)

            threads = [threading.Thread(target=call) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=5)
            assert errors == ["TIMEOUT"] * 8
        finally:
            sidecar.signal(signal.SIGCONT)
        assert client.record_request("x", None).throttle_time_ms == 0


def test_the_caller_side_timeout_holds_when_the_loop_is_late(sidecar: Sidecar) -> None:
    with QuotaClient(port=sidecar.port) as client:
        # Block the client's own loop: the call's async deadline cannot fire, the caller's wait still ends.
        release = threading.Event()
        client._loop.call_soon_threadsafe(release.wait, 5)
        started = time.monotonic()
        with pytest.raises(RivvenError) as info:
            client.record_request("y", None, timeout=0.05)
        waited = time.monotonic() - started
        release.set()
        assert info.value.code == "TIMEOUT" and waited < 5


def test_failed_connect_stops_the_thread() -> None:
    # The threads alive before, not their count: one an earlier test left winding down may end meanwhile.
    before = set(threading.enumerate())
    with pytest.raises(RivvenError) as info:
        QuotaClient.connect(port=1, connect_attempts=1)
    assert info.value.code == "CONNECTION_CLOSED"
    assert set(threading.enumerate()) - before == set()
