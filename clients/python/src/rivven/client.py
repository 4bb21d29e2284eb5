"""The blocking client: the same calls as AsyncQuotaClient, for threaded code.

It drives an AsyncQuotaClient on an event loop of its own, in one daemon thread. So both clients share every
behaviour (pipelining, deadlines, reconnect, TLS) and the socket is only ever touched by one thread: the calls
of many threads made at the same moment go out in one write. A caller waits at most its call's timeout, even when
that loop is late: past it the call raises TIMEOUT in the caller's thread, whatever the loop is doing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from .aio import AsyncQuotaClient
from .errors import RivvenError
from .options import ClientOptions
from .protocol import Body, Component, HelloOk, LeaseResult, QuotaAlteration, QuotaEntry, RecordResult, SortBy

T = TypeVar("T")


class _Waiter:
    """One call's result, handed from the loop thread to the caller's. A lock is the cheapest thing to wait on."""

    __slots__ = ("error", "lock", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.value: Any = None
        self.error: BaseException | None = None

    def done(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.error = RivvenError("CONNECTION_CLOSED", "the call was cancelled")
        else:
            self.error = fut.exception()
            if self.error is None:
                self.value = fut.result()
        self.lock.release()


class QuotaClient:
    """A connection to one rivven sidecar, for threaded code; safe to share between threads.

    with QuotaClient(port=9190, client_name="broker-1") as client:
        result = client.record_produce("alice", "app-1", 1024)
    """

    def __init__(self, options: ClientOptions | None = None, /, **kwargs: Any) -> None:
        self._async = AsyncQuotaClient(options, **kwargs)
        self.options = self._async.options
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def connect(cls, options: ClientOptions | None = None, /, **kwargs: Any) -> QuotaClient:
        """Connects (up to ``connect_attempts`` tries) and says Hello. On failure nothing is left running."""
        client = cls(options, **kwargs)
        client.open()
        return client

    def open(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop.run_forever, name="rivven-client", daemon=True)
            self._thread.start()
        try:
            self._run(self._async.open, None)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> QuotaClient:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._async.connected

    @property
    def pending_count(self) -> int:
        return self._async.pending_count

    @property
    def stats(self) -> dict[str, int]:
        return self._async.stats

    def record_produce(
        self,
        user: str | None,
        client_id: str | None,
        nbytes: int,
        *,
        admit: bool = False,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> RecordResult:
        t = self._timeout(timeout)
        return self._run(
            lambda: self._async.record_produce(user, client_id, nbytes, admit=admit, timeout=t, fail_fast=fail_fast), t
        )

    def record_consume(
        self,
        user: str | None,
        client_id: str | None,
        consumer_group: str | None,
        nbytes: int,
        *,
        admit: bool = False,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> RecordResult:
        t = self._timeout(timeout)
        a = self._async
        return self._run(
            lambda: a.record_consume(
                user, client_id, consumer_group, nbytes, admit=admit, timeout=t, fail_fast=fail_fast
            ),
            t,
        )

    def record_request(
        self,
        user: str | None,
        client_id: str | None,
        count: int = 1,
        *,
        admit: bool = False,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> RecordResult:
        t = self._timeout(timeout)
        return self._run(
            lambda: self._async.record_request(user, client_id, count, admit=admit, timeout=t, fail_fast=fail_fast), t
        )

    def record_usage(
        self,
        user: str | None,
        client_id: str | None,
        resource: str,
        amount: int = 1,
        *,
        admit: bool = False,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> RecordResult:
        """Records ``amount`` units of a named resource, for ``<resource>_rate`` (see AsyncQuotaClient)."""
        t = self._timeout(timeout)
        a = self._async
        return self._run(
            lambda: a.record_usage(user, client_id, resource, amount, admit=admit, timeout=t, fail_fast=fail_fast), t
        )

    def hello(self) -> HelloOk:
        return self._run(self._async.hello, self._timeout(None))

    def ping(self) -> None:
        self._run(self._async.ping, self._timeout(None))

    def describe_quotas(self, entities: Sequence[Component] | None = None) -> list[QuotaEntry]:
        return self._run(lambda: self._async.describe_quotas(entities), self._timeout(None))

    def alter_quotas(self, alterations: Sequence[QuotaAlteration], *, validate_only: bool = False) -> int:
        return self._run(
            lambda: self._async.alter_quotas(alterations, validate_only=validate_only), self._timeout(None)
        )

    def describe_usage(
        self, entities: Sequence[Component] | None = None, *, top: int | None = None, sort_by: SortBy | None = None
    ) -> list[dict[str, Any]]:
        return self._run(lambda: self._async.describe_usage(entities, top=top, sort_by=sort_by), self._timeout(None))

    def reset_usage(self, entities: Sequence[Component]) -> int:
        return self._run(lambda: self._async.reset_usage(entities), self._timeout(None))

    def describe_violations(
        self,
        *,
        since_ms: int | None = None,
        entities: Sequence[Component] | None = None,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        a = self._async
        return self._run(
            lambda: a.describe_violations(since_ms=since_ms, entities=entities, types=types, limit=limit),
            self._timeout(None),
        )

    def describe_fleet(self) -> dict[str, Any]:
        return self._run(self._async.describe_fleet, self._timeout(None))

    def acquire_lease(
        self,
        user: str | None,
        client_id: str | None = None,
        *,
        ttl_ms: int | None = None,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> LeaseResult:
        t = self._timeout(timeout)
        return self._run(
            lambda: self._async.acquire_lease(user, client_id, ttl_ms=ttl_ms, timeout=t, fail_fast=fail_fast), t
        )

    def release_lease(self, lease_id: str, *, timeout: float | None = None, fail_fast: bool = False) -> None:
        t = self._timeout(timeout)
        self._run(lambda: self._async.release_lease(lease_id, timeout=t, fail_fast=fail_fast), t)

    def request(self, body: Body, *, timeout: float | None = None) -> Body:
        t = self._timeout(timeout)
        return self._run(lambda: self._async.request(body, timeout=t), t)

    def close(self) -> None:
        """Fails whatever is pending with CONNECTION_CLOSED, stops reconnecting, closes the connection and stops
        the client's thread."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            try:
                self._run(self._async.close, 5.0)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    def _timeout(self, timeout: float | None) -> float:
        return self.options.request_timeout if timeout is None else timeout

    def _run(self, make: Callable[[], Awaitable[T]], timeout: float | None) -> T:
        """Starts ``make()`` on the client's loop and waits for it, at most ``timeout`` seconds."""
        if self._thread is None or self._loop.is_closed():
            raise RivvenError("CONNECTION_CLOSED", "the client is not open")
        waiter = _Waiter()

        def start() -> None:
            try:
                fut = asyncio.ensure_future(make())
            except BaseException as err:
                waiter.error = err
                waiter.lock.release()
                return
            fut.add_done_callback(waiter.done)

        self._loop.call_soon_threadsafe(start)
        if not waiter.lock.acquire(timeout=-1 if timeout is None else timeout):
            # The loop is late (the async call keeps its own deadline and will drop its answer): do not wait on.
            raise RivvenError("TIMEOUT", f"no reply from {self.options.address} within {(timeout or 0) * 1000:g} ms")
        if waiter.error is not None:
            raise waiter.error
        value: T = waiter.value
        return value
