"""The asyncio side of one connection: a Protocol that cuts the byte stream into frames, and the deadlines of
many calls kept by one timer per distinct timeout."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol

from .protocol import HEADER

#: Bytes queued for a peer that reads nothing past which the connection is taken for lost (never a buffer that
#: grows without bound while calls time out and new ones come).
MAX_QUEUED_BYTES = 16 * 1024 * 1024


class _Owner(Protocol):
    def _on_reply(self, conn: Connection, correlation_id: int, raw: bytes) -> None: ...

    def _on_close(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """Frames are handed to the owner as they complete. A length below 4 or above ``max_frame_bytes`` aborts the
    connection as soon as its 4 bytes arrive: an oversized frame is never buffered."""

    def __init__(self, owner: _Owner, max_frame_bytes: int) -> None:
        self.owner = owner
        self.max_frame_bytes = max_frame_bytes
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        #: The loop's time when its Hello was answered (set by the client).
        self.opened_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        n = len(buf)
        pos = 0
        while n - pos >= 4:
            length = int.from_bytes(buf[pos : pos + 4], "big")
            if length < 4 or length > self.max_frame_bytes:
                self.abort()
                return
            end = pos + 4 + length
            if end > n:
                break
            _, correlation_id = HEADER.unpack_from(buf, pos)
            self.owner._on_reply(self, correlation_id, bytes(buf[pos + 8 : end]))
            if self.closed:
                return
            pos = end
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        self.owner._on_close(self)

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            if self.transport.get_write_buffer_size() > MAX_QUEUED_BYTES:
                self.abort()  # its calls fail with CONNECTION_CLOSED as it closes; the client reconnects
                return
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()


class Deadlines:
    """Calls that share a timeout are added in the order they were made, so their deadlines come in order too: a
    FIFO where the one timer only waits for the head. Adding is O(1); a call answered in time is skipped when its
    turn comes (``expire`` ignores ids no longer pending). One call_later per call costs a heap entry each."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, expire: Callable[[int], None]) -> None:
        self._loop = loop
        self._timeout = timeout
        self._expire = expire
        self._queue: deque[tuple[float, int]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, correlation_id: int) -> None:
        self._queue.append((self._loop.time() + self._timeout, correlation_id))
        if self._timer is None:
            self._timer = self._loop.call_at(self._queue[0][0], self._fire)

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        q = self._queue
        while q and q[0][0] <= now:
            self._expire(q.popleft()[1])
        if q and self._timer is None:
            self._timer = self._loop.call_at(q[0][0], self._fire)
