"""Options of both clients, validated once and frozen. Durations are in seconds, as in the socket module."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from .protocol import DEFAULT_MAX_FRAME_BYTES


@dataclass(frozen=True, slots=True)
class ClientOptions:
    host: str = "127.0.0.1"
    port: int = 9190
    #: A call without its own timeout fails with TIMEOUT if no reply arrives within this.
    request_timeout: float = 5.0
    #: TCP connect (and TLS handshake) plus Hello must succeed within this, or the attempt fails.
    connect_timeout: float = 1.0
    #: Attempts before connect() gives up; reconnects after a drop retry until close().
    connect_attempts: int = 5
    #: First delay between attempts, doubled each time up to max_backoff.
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    #: Calls in flight at most; past it calls fail at once with OVERLOADED.
    max_pending: int = 10_000
    #: A reply frame longer than this closes the connection (the client never buffers it).
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    #: Sent in Hello; shows in the server's audit log.
    client_name: str | None = None
    #: Sent in Hello; never logged.
    token: str | None = field(default=None, repr=False)
    #: Connect with TLS using this context (CA, and for mTLS the client certificate: load_cert_chain).
    ssl: ssl.SSLContext | None = None
    #: The name the server's certificate must carry; the host by default.
    server_hostname: str | None = None

    def __post_init__(self) -> None:
        errors = []
        for name in ("request_timeout", "connect_timeout", "initial_backoff", "max_backoff"):
            if not getattr(self, name) > 0:
                errors.append(f"{name} must be > 0")
        for name in ("connect_attempts", "max_pending", "max_frame_bytes"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                errors.append(f"{name} must be an integer >= 1")
        if not 0 <= self.port <= 65535:
            errors.append("port must be 0..65535")
        if errors:
            raise ValueError("; ".join(errors))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


#: The defaults, as one object (like ioredis' DEFAULT_* beside every options type).
DEFAULT_CLIENT_OPTIONS = ClientOptions()
