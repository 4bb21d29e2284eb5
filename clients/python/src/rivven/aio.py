"""The asyncio client: one connection, pipelined calls matched to replies by correlation id."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

from . import requests as rq
from ._aio_conn import Connection, Deadlines
from .errors import RivvenError
from .options import DEFAULT_CLIENT_OPTIONS, ClientOptions
from .protocol import (
    CONSUME,
    OK_BODY,
    OK_RESULT,
    PRODUCE,
    REQUEST,
    Body,
    Component,
    HelloOk,
    LeaseResult,
    QuotaAlteration,
    QuotaEntry,
    RecordResult,
    SortBy,
    decode_body,
    decode_error,
    decode_record,
    encode_body,
    encode_record,
    encode_usage,
    frame,
)

T = TypeVar("T")


class _Pending:
    __slots__ = ("conn", "decode", "future")

    def __init__(self, future: asyncio.Future[Any], decode: Callable[[Body], Any] | None, conn: Connection | None):
        self.future = future
        #: None for record calls: an Ok body is recognised without decoding.
        self.decode = decode
        #: The connection the request was written to; None while it waits for one.
        self.conn = conn


class AsyncQuotaClient:
    """A connection to one rivven sidecar, for asyncio code (brokers through AsyncBrokerQuotas, tools, tests).

    Calls are pipelined: any number may be in flight (up to ``max_pending``), and the calls made in one loop
    iteration go out in one write. Each call has a timeout (its own, or ``request_timeout``). An Error reply raises
    RivvenError with the server's code. If the connection drops, the calls sent on it fail with CONNECTION_CLOSED
    (they may or may not have been applied), the client reconnects in the background with exponential backoff,
    and calls made meanwhile wait for it within their timeout, unless made with ``fail_fast``.

        async with AsyncQuotaClient(port=9190, client_name="broker-1") as client:
            result = await client.record_produce("alice", "app-1", 1024)
    """

    def __init__(self, options: ClientOptions | None = None, /, **kwargs: Any) -> None:
        self.options: ClientOptions = replace(options or DEFAULT_CLIENT_OPTIONS, **kwargs)
        #: Writes made to the socket (each carries every call of one loop iteration), and connections made.
        self.stats = {"writes": 0, "connects": 0}
        self._conn: Connection | None = None
        self._connecting: asyncio.Task[Connection] | None = None
        self._pending: dict[int, _Pending] = {}
        self._deadlines: dict[float, Deadlines] = {}
        self._out: list[bytes] = []
        self._out_conn: Connection | None = None
        self._next_id = 1
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: Seconds the next background reconnect waits before its first attempt: connections that die right after
        #: their Hello (a server that accepts and closes, forever) must not become a reconnect storm.
        self._redial_after = 0.0

    @classmethod
    async def connect(cls, options: ClientOptions | None = None, /, **kwargs: Any) -> AsyncQuotaClient:
        """Connects (up to ``connect_attempts`` tries) and says Hello. On failure nothing is left running."""
        client = cls(options, **kwargs)
        await client.open()
        return client

    async def open(self) -> None:
        try:
            await self._ensure_connected(self.options.connect_attempts)
        except BaseException:
            await self.close()
            raise

    async def ensure_connected(self, attempts: int | None = None) -> None:
        """Connects unless connected (``attempts`` tries, default ``connect_attempts``). Unlike open(), a failure
        leaves the client reconnecting in the background, so later calls find a connection once it is back."""
        try:
            await self._ensure_connected(attempts or self.options.connect_attempts)
        except RivvenError:
            self._reconnect_in_background()
            raise

    async def __aenter__(self) -> AsyncQuotaClient:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # -- record calls ----------------------------------------------------------------------------------------

    def record_produce(
        self,
        user: str | None,
        client_id: str | None,
        nbytes: int,
        *,
        admit: bool = False,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> asyncio.Future[RecordResult]:
        """Records a produce of ``nbytes`` by (user, client_id); the result says how long to delay the client."""
        return self._send(encode_record(PRODUCE, user, client_id, None, nbytes, admit), None, timeout, fail_fast)

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
    ) -> asyncio.Future[RecordResult]:
        body = encode_record(CONSUME, user, client_id, consumer_group, nbytes, admit)
        return self._send(body, None, timeout, fail_fast)

    def record_request(
        self,
        user: str | None,
        client_id: str | None,
        count: int = 1,
        *,
        admit: bool = False,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> asyncio.Future[RecordResult]:
        return self._send(encode_record(REQUEST, user, client_id, None, count, admit), None, timeout, fail_fast)

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
    ) -> asyncio.Future[RecordResult]:
        """Records ``amount`` units of a named resource (declared in the sidecar's quotas.resources), for
        ``<resource>_rate``; answered like the other record calls. An undeclared resource is INVALID_REQUEST from
        the sidecar; a name off the grammar or an amount outside 1..2^53-1 raises it here, unsent."""
        body = encode_usage(user, client_id, resource, amount, admit)
        key = f"{resource}_rate"
        return self._send(body, lambda b: decode_record(b, key), timeout, fail_fast)

    # -- other calls -----------------------------------------------------------------------------------------

    async def hello(self) -> HelloOk:
        return await self._call(rq.hello_request(self.options.client_name, self.options.token))

    async def ping(self) -> None:
        await self._call(rq.ping())

    async def describe_quotas(self, entities: Sequence[Component] | None = None) -> list[QuotaEntry]:
        return await self._call(rq.describe_quotas(entities))

    async def alter_quotas(self, alterations: Sequence[QuotaAlteration], *, validate_only: bool = False) -> int:
        """Applies every alteration or none; returns how many were applied (RivvenError.index names a bad one)."""
        return await self._call(rq.alter_quotas(alterations, validate_only))

    async def describe_usage(
        self, entities: Sequence[Component] | None = None, *, top: int | None = None, sort_by: SortBy | None = None
    ) -> list[dict[str, Any]]:
        return await self._call(rq.describe_usage(entities, top, sort_by))

    async def reset_usage(self, entities: Sequence[Component]) -> int:
        return await self._call(rq.reset_usage(entities))

    async def describe_violations(
        self,
        *,
        since_ms: int | None = None,
        entities: Sequence[Component] | None = None,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        return await self._call(rq.describe_violations(since_ms, entities, types, limit))

    async def describe_fleet(self) -> dict[str, Any]:
        return await self._call(rq.describe_fleet())

    async def acquire_lease(
        self,
        user: str | None,
        client_id: str | None = None,
        *,
        ttl_ms: int | None = None,
        timeout: float | None = None,
        fail_fast: bool = False,
    ) -> LeaseResult:
        """Takes an in-flight lease (max_in_flight), or learns how long until one frees up."""
        return await self._call(rq.acquire_lease(user, client_id, ttl_ms), timeout, fail_fast)

    async def release_lease(self, lease_id: str, *, timeout: float | None = None, fail_fast: bool = False) -> None:
        """Ends a lease (idempotent)."""
        await self._call(rq.release_lease(lease_id), timeout, fail_fast)

    async def request(self, body: Body, *, timeout: float | None = None) -> Body:
        """Sends any request body; returns the reply body, raises RivvenError on an Error reply."""
        reply: Body = await self._send(encode_body(body), lambda b: b, timeout, False)
        return reply

    async def close(self) -> None:
        """Fails whatever is pending with CONNECTION_CLOSED, stops reconnecting, closes the connection."""
        self._closed = True
        self._fail_pending(RivvenError("CONNECTION_CLOSED", "the client was closed"), None)
        if self._connecting is not None:
            self._connecting.cancel()
        conn, self._conn = self._conn, None
        if conn is not None and conn.transport is not None and not conn.closed:
            conn.transport.close()
            try:
                # A server that never answers the FIN must not hold close() up.
                await asyncio.wait_for(asyncio.shield(conn.lost), 1.0)
            except TimeoutError:
                conn.abort()

    # -- machinery -------------------------------------------------------------------------------------------

    def _call(self, req: rq.Request[T], timeout: float | None = None, fail_fast: bool = False) -> asyncio.Future[T]:
        return self._send(encode_body(req[0]), req[1], timeout, fail_fast)

    def _send(
        self, body: bytes, decode: Callable[[Body], Any] | None, timeout: float | None, fail_fast: bool
    ) -> asyncio.Future[Any]:
        """Pends a call and writes its frame (now, or once connected); the future settles with its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._closed:
            fut.set_exception(RivvenError("CONNECTION_CLOSED", "the client is closed"))
            return fut
        if len(self._pending) >= self.options.max_pending:
            n = len(self._pending)
            fut.set_exception(RivvenError("OVERLOADED", f"{n} calls are in flight to {self.options.address}"))
            return fut
        conn = self._conn
        if conn is None and fail_fast:
            self._reconnect_in_background()
            fut.set_exception(RivvenError("UNAVAILABLE", f"not connected to {self.options.address}"))
            return fut
        cid = self._new_id()
        self._pending[cid] = _Pending(fut, decode, conn)
        self._deadline(loop, self.options.request_timeout if timeout is None else timeout).add(cid)
        if conn is not None:
            self._write(conn, frame(cid, body))
        else:
            task = loop.create_task(self._send_when_connected(cid, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return fut

    async def _send_when_connected(self, cid: int, body: bytes) -> None:
        try:
            conn = await self._ensure_connected(math.inf)
        except BaseException as err:
            self._settle_error(cid, err if isinstance(err, RivvenError) else _closed(str(err)))
            return
        p = self._pending.get(cid)
        if p is not None:  # else it timed out meanwhile: nothing to write
            p.conn = conn
            self._write(conn, frame(cid, body))

    def _new_id(self) -> int:
        cid = self._next_id
        # 0 is reserved for connection errors; skip ids still in flight after a wrap-around.
        while cid == 0 or cid in self._pending:
            cid = 1 if cid >= 0xFFFFFFFF else cid + 1
        self._next_id = 1 if cid >= 0xFFFFFFFF else cid + 1
        return cid

    def _deadline(self, loop: asyncio.AbstractEventLoop, timeout: float) -> Deadlines:
        q = self._deadlines.get(timeout)
        if q is None:
            addr = self.options.address

            def expire(cid: int) -> None:
                self._settle_error(cid, RivvenError("TIMEOUT", f"no reply from {addr} within {timeout * 1000:g} ms"))

            q = self._deadlines[timeout] = Deadlines(loop, timeout, expire)
        return q

    def _write(self, conn: Connection, data: bytes) -> None:
        """Queues the frame for the one write this loop iteration makes."""
        if self._out_conn is not conn:
            self._flush()
            self._out_conn = conn
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, conn = self._out, self._out_conn
        if not out or conn is None:
            return
        self._out = []
        if not conn.closed:  # else its calls fail with CONNECTION_CLOSED as it closes
            self.stats["writes"] += 1
            conn.write(b"".join(out))

    def _on_reply(self, conn: Connection, cid: int, raw: bytes) -> None:
        if cid == 0:
            # The server reports a connection-level error and closes: every call sent on it fails with it.
            try:
                err = decode_error(decode_body(raw))
            except RivvenError as e:
                err = e
            self._fail_pending(err, conn)
            return
        p = self._pending.pop(cid, None)
        if p is None or p.future.done():
            # Timed out earlier, or its caller gave up (cancelled: the entry stays until its deadline, which is
            # cheaper than a done-callback on every call): the late reply is dropped.
            if p is not None:
                self._after_settle()
            return
        self._after_settle()
        if p.decode is None and raw == OK_BODY:
            p.future.set_result(OK_RESULT)
            return
        try:
            body = decode_body(raw)
            if body["type"] == "Error":
                raise decode_error(body)
            p.future.set_result(decode_record(body) if p.decode is None else p.decode(body))
        except RivvenError as err:
            p.future.set_exception(err)

    def _settle_error(self, cid: int, err: BaseException) -> None:
        p = self._pending.pop(cid, None)
        if p is not None:
            self._after_settle()
            if not p.future.done():
                p.future.set_exception(err)

    def _after_settle(self) -> None:
        # Nothing left in flight: no deadline timer may outlive the calls it was for, and no queue is kept (callers
        # that pass a timeout of their own each time, a deadline budget, made one queue per value, walked here on
        # every call: 20,000 calls took 14 s).
        if not self._pending:
            for q in self._deadlines.values():
                q.clear()
            self._deadlines.clear()

    def _fail_pending(self, err: RivvenError, conn: Connection | None) -> None:
        """Fails the calls sent on ``conn``, or every call when it is None."""
        for cid, p in list(self._pending.items()):
            if conn is None or p.conn is conn:
                self._settle_error(cid, err)

    def _on_close(self, conn: Connection) -> None:
        self._fail_pending(_closed(f"connection to {self.options.address} closed"), conn)
        if self._conn is not conn:
            return
        self._conn = None
        o = self.options
        if asyncio.get_running_loop().time() - conn.opened_at < o.max_backoff:
            self._redial_after = min(max(self._redial_after * 2, o.initial_backoff), o.max_backoff)
        else:
            self._redial_after = 0.0
        if not self._closed:
            self._reconnect_in_background()

    def _reconnect_in_background(self) -> None:
        if self._closed or self._connecting is not None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the client is being torn down
            self._start_dial(math.inf, self._redial_after)

    def _start_dial(self, attempts: float, wait: float = 0.0) -> asyncio.Task[Connection]:
        task = asyncio.get_running_loop().create_task(self._dial(attempts, wait))
        self._connecting = task

        def done(t: asyncio.Task[Connection]) -> None:
            if self._connecting is t:
                self._connecting = None
            if not t.cancelled():
                t.exception()  # retrieved: a failed background reconnect is not an unhandled error

        task.add_done_callback(done)
        return task

    async def _ensure_connected(self, attempts: float) -> Connection:
        if self._conn is not None:
            return self._conn
        task = self._connecting or self._start_dial(attempts)
        # A waiter that gives up (its own timeout) must not cancel the dial others wait for.
        return await asyncio.shield(task)

    async def _dial(self, attempts: float, wait: float = 0.0) -> Connection:
        o = self.options
        loop = asyncio.get_running_loop()
        if wait:
            await asyncio.sleep(wait)
        delay = o.initial_backoff
        attempt = 0
        while True:
            attempt += 1
            if self._closed:
                raise _closed("the client was closed")
            conn: Connection | None = None
            try:
                conn = await self._open(loop)
                fut = self._send_on(conn, rq.hello_request(o.client_name, o.token), o.connect_timeout)
                await fut
                if self._closed:
                    raise _closed("the client was closed")
                self._conn = conn
                conn.opened_at = loop.time()
                self.stats["connects"] += 1
                return conn
            except (OSError, RivvenError, TimeoutError) as err:
                # A socket whose Hello failed or timed out is of no use: never leave it open.
                if conn is not None:
                    conn.abort()
                if isinstance(err, RivvenError) and not err.retriable:
                    raise
                if attempt >= attempts or self._closed:
                    reason = err.code if isinstance(err, RivvenError) else (type(err).__name__ + f": {err}")[:200]
                    raise _closed(f"cannot reach the rivven server at {o.address} ({reason})") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, o.max_backoff)
            except BaseException:
                if conn is not None:  # cancelled (close()) mid-handshake
                    conn.abort()
                raise

    def _send_on(self, conn: Connection, req: rq.Request[T], timeout: float) -> asyncio.Future[T]:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        cid = self._new_id()
        self._pending[cid] = _Pending(fut, req[1], conn)
        self._deadline(asyncio.get_running_loop(), timeout).add(cid)
        self._write(conn, frame(cid, encode_body(req[0])))
        return fut

    async def _open(self, loop: asyncio.AbstractEventLoop) -> Connection:
        o = self.options
        conn = Connection(self, o.max_frame_bytes)
        kwargs: dict[str, Any] = {}
        if o.ssl is not None:
            kwargs = {"ssl": o.ssl, "server_hostname": o.server_hostname or o.host}
        try:
            await asyncio.wait_for(loop.create_connection(lambda: conn, o.host, o.port, **kwargs), o.connect_timeout)
        except TimeoutError:
            raise RivvenError(
                "TIMEOUT", f"no connection to {o.address} within {o.connect_timeout * 1000:g} ms"
            ) from None
        return conn  # asyncio sets TCP_NODELAY on TCP transports


def _closed(message: str) -> RivvenError:
    return RivvenError("CONNECTION_CLOSED", message)
