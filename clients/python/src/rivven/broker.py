"""What a broker calls on each client request (DESIGN section 9): the delay in ms, 0 on any failure, -1 Denied.

It never stalls the broker. A call answers within ``record_deadline`` (default 25 ms) or 0. Without a connection
it answers 0 at once (the client reconnects in the background). After ``failure_threshold`` consecutive failures
(timeouts, lost connections, an overloaded sidecar) the breaker opens and calls answer 0 at once, unsent; after
``reset_timeout`` one call probes the sidecar and, if answered, closes the breaker. A blocked principal is answered
DENIED (-1): reject that request instead of delaying it. A sidecar outage must not become a broker outage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final

from .aio import AsyncQuotaClient
from .breaker import BreakerOptions, CircuitBreaker
from .client import QuotaClient
from .errors import RivvenError
from .protocol import RecordResult

#: The answer for a blocked principal: reject the request (Kafka: an authorization or quota error), do not delay it.
DENIED: Final = -1
DEFAULT_RECORD_DEADLINE: Final = 0.025


def _ignore_error(err: Exception) -> None:
    return None


def _ignore_denied(entity: str, reason: str) -> None:
    return None


class _Wrapper:
    def __init__(
        self,
        record_deadline: float,
        breaker: BreakerOptions | None,
        on_error: Callable[[Exception], None] | None,
        on_denied: Callable[[str, str], None] | None,
        now: Callable[[], float],
    ) -> None:
        if not record_deadline > 0:
            raise ValueError("record_deadline must be > 0")
        self.record_deadline = record_deadline
        self.breaker = CircuitBreaker(breaker, now)
        #: Told about each call answered 0 because the sidecar could not answer (rate-limit your logging).
        self.on_error = on_error or _ignore_error
        #: Told about each call answered DENIED: the blocked entity and the reason an operator gave.
        self.on_denied = on_denied or _ignore_denied
        #: Calls answered 0 because the sidecar could not answer (failed, late, or not tried: breaker open).
        self.failures = 0
        #: Of those, the calls not sent because the breaker was open.
        self.short_circuited = 0
        #: Calls answered DENIED.
        self.denied = 0
        self._lock = threading.Lock()  # the counters of the blocking wrapper are bumped from many threads

    def _allow(self) -> bool:
        if self.breaker.allow():
            return True
        with self._lock:
            self.failures += 1
            self.short_circuited += 1
        return False

    def _answered(self, r: RecordResult) -> int:
        self.breaker.success()
        if r.denied is None:
            return r.throttle_time_ms
        with self._lock:
            self.denied += 1
        self.on_denied(r.denied.entity, r.denied.reason)
        return DENIED

    def _failed(self, err: RivvenError) -> int:
        with self._lock:
            self.failures += 1
        # A non-retriable error is a bad call, not a sick sidecar: it does not move the breaker.
        if err.retriable:
            self.breaker.failure()
        else:
            self.breaker.success()
        self.on_error(err)
        return 0


class AsyncBrokerQuotas(_Wrapper):
    """The broker wrapper over an AsyncQuotaClient.

    async def on_produce(user, client_id, nbytes):
        delay_ms = await quotas.produce(user, client_id, nbytes)   # 0, a delay, or DENIED
    """

    def __init__(
        self,
        client: AsyncQuotaClient,
        *,
        record_deadline: float = DEFAULT_RECORD_DEADLINE,
        breaker: BreakerOptions | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_denied: Callable[[str, str], None] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(record_deadline, breaker, on_error, on_denied, now)
        self.client = client

    async def _call(self, start: Callable[[], Awaitable[RecordResult]]) -> int:
        """One record call through the breaker: its answer, 0 when the breaker or the sidecar fails (fail open)."""
        if not self._allow():
            return 0
        try:
            r = await start()
        except RivvenError as err:
            return self._failed(err)
        except BaseException:
            self.breaker.abandoned()  # cancelled, or a bad argument: it must not hold the probe forever
            raise
        return self._answered(r)

    async def produce(self, user: str | None, client_id: str | None, nbytes: int) -> int:
        """A produce request of ``nbytes``: the delay in ms, 0, or DENIED (reject it)."""
        return await self._call(
            lambda: self.client.record_produce(user, client_id, nbytes, timeout=self.record_deadline, fail_fast=True)
        )

    async def fetch(self, user: str | None, client_id: str | None, consumer_group: str | None, nbytes: int) -> int:
        """A fetch of ``nbytes``, held against the consumer group's quota too when it has one."""
        return await self._call(
            lambda: self.client.record_consume(
                user, client_id, consumer_group, nbytes, timeout=self.record_deadline, fail_fast=True
            )
        )

    async def request(self, user: str | None, client_id: str | None, count: int = 1) -> int:
        """Any request, for request_rate."""
        return await self._call(
            lambda: self.client.record_request(user, client_id, count, timeout=self.record_deadline, fail_fast=True)
        )

    async def usage(self, user: str | None, client_id: str | None, resource: str, amount: int = 1) -> int:
        """``amount`` units of a named resource (orders, API calls: declared in the sidecar's quotas.resources),
        for ``<resource>_rate``: the delay in ms, 0, or DENIED, as for the other calls."""
        return await self._call(
            lambda: self.client.record_usage(
                user, client_id, resource, amount, timeout=self.record_deadline, fail_fast=True
            )
        )


class BrokerQuotas(_Wrapper):
    """The broker wrapper over a blocking QuotaClient; safe to call from many broker threads at once."""

    def __init__(
        self,
        client: QuotaClient,
        *,
        record_deadline: float = DEFAULT_RECORD_DEADLINE,
        breaker: BreakerOptions | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_denied: Callable[[str, str], None] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(record_deadline, breaker, on_error, on_denied, now)
        self.client = client

    def _call(self, start: Callable[[], RecordResult]) -> int:
        """One record call through the breaker: its answer, 0 when the breaker or the sidecar fails (fail open)."""
        if not self._allow():
            return 0
        try:
            r = start()
        except RivvenError as err:
            return self._failed(err)
        except BaseException:
            self.breaker.abandoned()  # cancelled, or a bad argument: it must not hold the probe forever
            raise
        return self._answered(r)

    def produce(self, user: str | None, client_id: str | None, nbytes: int) -> int:
        return self._call(
            lambda: self.client.record_produce(user, client_id, nbytes, timeout=self.record_deadline, fail_fast=True)
        )

    def fetch(self, user: str | None, client_id: str | None, consumer_group: str | None, nbytes: int) -> int:
        return self._call(
            lambda: self.client.record_consume(
                user, client_id, consumer_group, nbytes, timeout=self.record_deadline, fail_fast=True
            )
        )

    def request(self, user: str | None, client_id: str | None, count: int = 1) -> int:
        return self._call(
            lambda: self.client.record_request(user, client_id, count, timeout=self.record_deadline, fail_fast=True)
        )

    def usage(self, user: str | None, client_id: str | None, resource: str, amount: int = 1) -> int:
        """``amount`` units of a named resource, for ``<resource>_rate`` (see AsyncBrokerQuotas.usage)."""
        return self._call(
            lambda: self.client.record_usage(
                user, client_id, resource, amount, timeout=self.record_deadline, fail_fast=True
            )
        )
