"""Rate limits for HTTP services (DESIGN section 19): an ASGI middleware for FastAPI, Starlette or any ASGI app.

    app.add_middleware(RateLimitMiddleware, port=9190, tenant_header="x-tenant-id", leases=True)

Per HTTP request: the tenant (a header, or a callback on the ASGI scope) is recorded with RecordRequest in admit
mode, so a refused request costs nothing and its wait is exact; with ``resource="orders"`` it is recorded with
RecordUsage against that named resource's ``orders_rate`` instead (declared in the sidecar's quotas.resources; an
undeclared one fails open, reported to ``on_error``), as the Fastify plugin's ``resource`` option does.
Throttled -> 429 with ``Retry-After`` (whole seconds, rounded up: retrying then succeeds) and ``X-RateLimit-*``;
Denied (a blocked tenant) -> 403 with the operator's reason; a tenant the sidecar refuses as a name (over 1024 bytes)
-> 400. With ``leases``, the request also holds an in-flight lease (quota key ``max_in_flight``) while the app runs:
over the limit -> 429. With ``count_bytes``, bodies count against the tenant's byte quotas: a request body as produce
bytes, a response body as consume bytes. A body with Content-Length is recorded before the app runs, in admit mode
(over -> 429, nothing recorded); a chunked request body and every response body are counted as they pass and recorded
after the response, as Kafka records a fetch; the throttle they earn refuses the tenant's next requests (429) until it
ends. The sidecar's absence never fails a request: past ``record_deadline``, while unreachable, or with the breaker
open, the request passes (fail open), and the client reconnects in the background. Requests without a tenant pass
unrecorded (a tenant callback can return a shared name to limit them together).
Pure ASGI: nothing here imports Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeGuard

from .aio import AsyncQuotaClient
from .breaker import BreakerOptions, CircuitBreaker
from .errors import RivvenError
from .options import ClientOptions
from .protocol import RESOURCE_NAME, LeaseResult, RecordResult

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Takes the ASGI scope, returns a name or None; may be async.
NameFn = Callable[[Scope], "str | Awaitable[str | None] | None"]


class RateLimitMiddleware:
    """See the module's doc. ``client`` shares an AsyncQuotaClient (then the app owns it); otherwise one is made
    from ``options`` and ``client_options`` (host, port, token, ...), connected at lifespan startup (or on the
    first request) and closed at lifespan shutdown."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: AsyncQuotaClient | None = None,
        options: ClientOptions | None = None,
        tenant_header: str = "x-tenant-id",
        tenant: NameFn | None = None,
        client_id: NameFn | None = None,
        cost: Callable[[Scope], int] | None = None,
        resource: str | None = None,
        count_bytes: bool = False,
        clock: Callable[[], float] = time.monotonic,
        record_deadline: float = 0.025,
        breaker: BreakerOptions | None = None,
        leases: bool = False,
        lease_ttl_ms: int = 30_000,
        rate_limit_headers: bool = True,
        usage_refresh: float = 1.0,
        max_tenants: int = 10_000,
        on_error: Callable[[Exception], None] | None = None,
        **client_options: Any,
    ) -> None:
        if resource is not None and not (isinstance(resource, str) and RESOURCE_NAME.fullmatch(resource)):
            raise ValueError(f"resource {resource!r}: 1-32 characters of a-z, 0-9 and _, starting with a letter")
        self.app = app
        self._owns_client = client is None
        if client is None:
            client_options.setdefault("client_name", "rivven-asgi")
            client = AsyncQuotaClient(options, **client_options)
        self.client = client
        self.tenant_header = tenant_header.lower().encode("latin-1")
        self.tenant = tenant
        self.client_id = client_id
        self.cost = cost
        #: The named resource each request counts against (RecordUsage), or None: request_rate (RecordRequest).
        self.resource = resource
        #: The key a request is limited by, whose DescribeUsage row gives the X-RateLimit headers.
        self._rate_key = "request_rate" if resource is None else f"{resource}_rate"
        self.count_bytes = count_bytes
        #: Seconds, monotonic; times the throttle that counted bytes earn (tests pass the sidecar's manual clock).
        self.clock = clock
        self.record_deadline = record_deadline
        self.breaker = CircuitBreaker(breaker)
        self.leases = leases
        self.lease_ttl_ms = lease_ttl_ms
        self.rate_limit_headers = rate_limit_headers
        self.usage_refresh = usage_refresh
        self.max_tenants = max_tenants
        self.on_error = on_error
        #: Requests passed unchecked because the sidecar could not answer (failed, late, or breaker open).
        self.failures = 0
        # tenant -> (fetched at, limit per second, measured rate): for X-RateLimit-Limit and -Remaining.
        self._usage: OrderedDict[str, tuple[float, float, float]] = OrderedDict()
        self._refreshing: set[str] = set()
        self._describe_allowed = True
        # tenant -> when the throttle its counted bytes earned after a response ends (clock()), oldest first.
        self._throttled_until: OrderedDict[str, float] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tenant = await self._name(scope, self.tenant) if self.tenant else self._header(scope)
        if tenant is None:
            await self.app(scope, receive, send)
            return
        client_id = await self._name(scope, self.client_id) if self.client_id else None
        if self.count_bytes:
            until = self._throttled_until.get(tenant)
            if until is not None:
                now = self.clock()
                if until > now:
                    await self._too_many(send, tenant, math.ceil((until - now) * 1000), "rate_limited")
                    return
                del self._throttled_until[tenant]
        record = self.client.record_request if self.resource is None else self._record_usage
        r = await self._guarded(record, tenant, client_id, self.cost(scope) if self.cost else 1)
        length = _content_length(scope) if self.count_bytes else None
        if length and isinstance(r, RecordResult) and r.denied is None and r.throttle_time_ms == 0:
            r = await self._guarded(self.client.record_produce, tenant, client_id, length)
        if r is _INVALID:
            await _respond(send, 400, {"error": "invalid_tenant", "reason": _INVALID_REASON}, [])
            return
        if isinstance(r, RecordResult):
            if r.denied is not None:
                await _respond(send, 403, {"error": "forbidden", "reason": r.denied.reason}, [])
                return
            if r.throttle_time_ms > 0:
                await self._too_many(send, tenant, r.throttle_time_ms, "rate_limited")
                return
        lease_id: str | None = None
        if self.leases:
            lease = await self._guarded(self._acquire, tenant, client_id, 0)
            if isinstance(lease, LeaseResult):
                if not lease.granted:
                    await self._too_many(send, tenant, lease.throttle_time_ms, "too_many_in_flight")
                    return
                lease_id = lease.lease_id
        headers = self._limit_headers(tenant)
        if headers:
            send = _with_headers(send, headers)
        counted = _Counted()
        if self.count_bytes:
            send = counted.sending(send)
            if length is None:
                receive = counted.receiving(receive)
        try:
            await self.app(scope, receive, send)
        finally:
            if lease_id is not None:
                self._background(self._release(lease_id))
            if counted.request_bytes:
                self._background(self._record_after(self._produce_after, tenant, client_id, counted.request_bytes))
            if counted.response_bytes:
                self._background(self._record_after(self._consume_after, tenant, client_id, counted.response_bytes))

    # -- the sidecar, failing open ---------------------------------------------------------------------------

    async def _guarded(
        self, call: Callable[..., Awaitable[Any]], tenant: str, client_id: str | None, count: int
    ) -> RecordResult | LeaseResult | object | None:
        """The call's answer, or None (fail open) when the breaker is open or the sidecar does not answer in time;
        _INVALID when the sidecar refuses the tenant or client-id as a name."""
        if not self.breaker.allow():
            self.failures += 1
            return None
        try:
            result: RecordResult | LeaseResult = await call(
                tenant, client_id, count, admit=True, timeout=self.record_deadline, fail_fast=True
            )
        except RivvenError as err:
            if err.code == "INVALID_ENTITY":
                # A name the sidecar refuses (longer than 1024 bytes) is a bad request, not a sidecar away: let
                # through, any tenant would escape its limits by a long enough name.
                self.breaker.success()
                return _INVALID
            self.failures += 1
            if err.retriable:
                self.breaker.failure()
            else:
                self.breaker.success()  # a bad call, not a sick sidecar
            if self.on_error is not None:
                self.on_error(err)
            return None
        except BaseException:
            self.breaker.abandoned()  # the request was cancelled (client gone): it must not hold the probe forever
            raise
        self.breaker.success()
        return result

    def _acquire(
        self, tenant: str, client_id: str | None, _count: int, *, admit: bool, timeout: float, fail_fast: bool
    ) -> Awaitable[LeaseResult]:
        return self.client.acquire_lease(
            tenant, client_id, ttl_ms=self.lease_ttl_ms, timeout=timeout, fail_fast=fail_fast
        )

    def _record_usage(
        self, tenant: str, client_id: str | None, n: int, *, admit: bool, timeout: float, fail_fast: bool
    ) -> Awaitable[RecordResult]:
        return self.client.record_usage(
            tenant, client_id, self.resource or "", n, admit=admit, timeout=timeout, fail_fast=fail_fast
        )

    def _produce_after(
        self, tenant: str, client_id: str | None, n: int, *, admit: bool, timeout: float, fail_fast: bool
    ) -> Awaitable[RecordResult]:
        return self.client.record_produce(tenant, client_id, n, timeout=timeout, fail_fast=fail_fast)

    def _consume_after(
        self, tenant: str, client_id: str | None, n: int, *, admit: bool, timeout: float, fail_fast: bool
    ) -> Awaitable[RecordResult]:
        return self.client.record_consume(tenant, client_id, None, n, timeout=timeout, fail_fast=fail_fast)

    async def _record_after(
        self, call: Callable[..., Awaitable[Any]], tenant: str, client_id: str | None, n: int
    ) -> None:
        """Records bytes counted during a response (never in admit mode: they have passed); the throttle they
        earn refuses the tenant's next requests until it ends."""
        r = await self._guarded(call, tenant, client_id, n)
        if not isinstance(r, RecordResult) or r.denied is not None or r.throttle_time_ms <= 0:
            return
        until = self.clock() + r.throttle_time_ms / 1000
        if self._throttled_until.get(tenant, 0.0) >= until:
            return
        self._throttled_until[tenant] = until
        self._throttled_until.move_to_end(tenant)
        while len(self._throttled_until) > self.max_tenants:
            self._throttled_until.popitem(last=False)

    async def _release(self, lease_id: str) -> None:
        # Best effort: an unreleased lease still ends at its ttl, or when this connection closes.
        with contextlib.suppress(RivvenError):
            await self.client.release_lease(lease_id, fail_fast=True)

    # -- responses and headers -------------------------------------------------------------------------------

    async def _too_many(self, send: Send, tenant: str, wait_ms: int, error: str) -> None:
        # Whole seconds strictly past the wait: a wait of exactly 2000 ms said 2, and a retry at that instant
        # could find the bucket exactly full.
        retry_after = wait_ms // 1000 + 1
        headers = [(b"retry-after", str(retry_after).encode())]
        if self.rate_limit_headers:
            limit = self._snapshot(tenant)
            if limit is not None:
                headers.append((b"x-ratelimit-limit", str(int(limit[0])).encode()))
            headers += [(b"x-ratelimit-remaining", b"0"), (b"x-ratelimit-reset", str(retry_after).encode())]
        await _respond(send, 429, {"error": error, "retry_after_ms": wait_ms}, headers)

    def _limit_headers(self, tenant: str) -> list[tuple[bytes, bytes]]:
        """Limit: requests per second as the sidecar enforces it; Remaining: what is left of it at the measured
        rate; Reset: the second those figures cover. From a snapshot at most ``usage_refresh`` old."""
        if not self.rate_limit_headers:
            return []
        snap = self._snapshot(tenant)
        if snap is None:
            return []
        limit, rate = snap
        remaining = max(0, math.floor(limit - rate))
        return [
            (b"x-ratelimit-limit", str(int(limit)).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
            (b"x-ratelimit-reset", b"1"),
        ]

    def _snapshot(self, tenant: str) -> tuple[float, float] | None:
        """The tenant's last known (limit, rate); refreshes it in the background when stale. Never waits."""
        entry = self._usage.get(tenant)
        now = time.monotonic()
        if (
            self._describe_allowed
            and (entry is None or now - entry[0] > self.usage_refresh)
            and tenant not in self._refreshing
            and len(self._refreshing) < 64  # bounded: a flood of new tenants must not flood the sidecar
        ):
            self._refreshing.add(tenant)
            self._background(self._refresh(tenant))
        return None if entry is None else (entry[1], entry[2])

    async def _refresh(self, tenant: str) -> None:
        try:
            rows = await self.client.describe_usage([("user", tenant)], top=100)
        except RivvenError as err:
            if err.code == "AUTHORIZATION_FAILED":
                self._describe_allowed = False  # the token lacks the describe role: no limit headers, ever
            return
        finally:
            self._refreshing.discard(tenant)
        for row in rows:
            if not isinstance(row, dict):
                return
            if row.get("quota_type") == self._rate_key and row.get("user") == tenant and row.get("client_id") is None:
                limit, rate = row.get("limit"), row.get("rate")
                # Only finite numbers: an infinite limit made every later request of the tenant fail (OverflowError
                # in int()); a reply the headers cannot show means no headers, never a failed request.
                if not (_finite(limit) and _finite(rate)):
                    return
                self._usage[tenant] = (time.monotonic(), float(limit), float(rate))
                self._usage.move_to_end(tenant)
                while len(self._usage) > self.max_tenants:
                    self._usage.popitem(last=False)
                return

    # -- plumbing --------------------------------------------------------------------------------------------

    def _header(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == self.tenant_header:
                v: str = value.decode("latin-1").strip()
                return v or None
        return None

    @staticmethod
    async def _name(scope: Scope, fn: NameFn) -> str | None:
        v = fn(scope)
        if inspect.isawaitable(v):
            v = await v
        return v if isinstance(v, str) and v else None

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # One attempt, so a sidecar that is away delays startup by connect_timeout at most; requests fail
                # open meanwhile and the client keeps reconnecting in the background.
                with contextlib.suppress(RivvenError):
                    await self.client.ensure_connected(1)
            elif message["type"] == "lifespan.shutdown" and self._owns_client:
                await self.client.close()
            return message

        return wrapped

    def _background(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Counted:
    """Body bytes that pass through one request's receive and send, for ``count_bytes``."""

    __slots__ = ("request_bytes", "response_bytes")

    def __init__(self) -> None:
        self.request_bytes = 0
        self.response_bytes = 0

    def receiving(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.request_bytes += len(message.get("body", b""))
            return message

        return wrapped

    def sending(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.body":
                self.response_bytes += len(message.get("body", b""))
            await send(message)

        return wrapped


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length when it is a plain decimal count, else None (a chunked body)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            v = value.decode("latin-1").strip()
            return int(v) if v.isascii() and v.isdigit() and len(v) <= 15 else None
    return None


#: _guarded's answer when the sidecar refuses the tenant or client-id as a name (INVALID_ENTITY): 400.
_INVALID = object()
_INVALID_REASON = "the sidecar refuses this tenant or client-id as a name"


def _finite(v: object) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *headers]
        await send(message)

    return wrapped


async def _respond(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": raw})
