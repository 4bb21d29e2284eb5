"""The one error-code table of the rivven protocol (docs/protocol.md, "Error codes"), and the one exception."""

from __future__ import annotations

from typing import Final

#: Every code the server or a client may report, with its meaning. A code is never reused for a second meaning.
ERROR_CODES: Final[dict[str, str]] = {
    "INVALID_FRAME": "The frame length is below 4; the server closes the connection.",
    "FRAME_TOO_LARGE": "The frame length exceeds server.max_frame_bytes; the server closes the connection.",
    "FRAME_TIMEOUT": "A frame was started and not completed within server.frame_timeout_ms; "
    "the server closes the connection.",
    "INVALID_REQUEST": "The body is not a msgpack map, lacks a string type, or has a field of the wrong type or range.",
    "UNKNOWN_REQUEST_TYPE": "The body names a request type this server does not know.",
    "UNSUPPORTED_VERSION": "Hello asked for a protocol_version this server does not speak.",
    "AUTHENTICATION_REQUIRED": "The server has a tokens file and this connection has not authenticated: "
    "send Hello with a token first.",
    "AUTHENTICATION_FAILED": "The token was not accepted; the server closes the connection.",
    "AUTHORIZATION_FAILED": "The authenticated identity lacks the role this request needs.",
    "INVALID_ENTITY": "An entity is not one of the valid shapes, or a name is empty or longer than 1024 bytes.",
    "INVALID_QUOTA_KEY": "A quota_key is unknown, or not allowed for that entity "
    "(groups take only consume_bytes_rate).",
    "INVALID_QUOTA_VALUE": 'A quota_value is not a value its key takes (a positive number, "<amount>/<unit>", '
    'a list of up to 4 rates with distinct units, "unlimited" or null), or a tier name or block reason is not valid.',
    "DUPLICATE_ALTERATION": "One AlterQuotas request names the same entity and quota_key twice.",
    "TOO_MANY_ITEMS": "A list in the request is longer than the server accepts in one request.",
    "UNKNOWN_TIER": "An alteration assigns a tier that has no values and is not in rivven.yaml.",
    "TIER_IN_USE": "An alteration would delete a tier still assigned to entities; reassign them first.",
    "TOO_MANY_ENTITIES": "The alteration would configure more entities than storage.max_entities; nothing was applied.",
    "REPLY_TOO_LARGE": "The reply would exceed server.max_reply_bytes; narrow the request (entities, top).",
    "STORAGE_ERROR": "The change could not be made durable; nothing was applied.",
    "OVERLOADED": "The server is shedding load (connection or memory limits reached); retry later.",
    "SHUTTING_DOWN": "The server is shutting down and takes no new connections.",
    "CONNECTION_CLOSED": "The connection closed before the reply arrived (client side only).",
    "TIMEOUT": "No reply arrived within the request timeout (client side only).",
    "UNAVAILABLE": "The call was not sent: no connection, or the breaker is open (client side only).",
    "UNEXPECTED_REPLY": "The server answered with a reply this client does not expect for its request "
    "(client side only).",
    "INTERNAL_ERROR": "A bug in the server; the request was not applied.",
}

#: Codes that say "the same request may succeed later, unchanged": retry, or (record calls) fail open.
RETRIABLE_CODES: Final[frozenset[str]] = frozenset(
    {
        "OVERLOADED",
        "SHUTTING_DOWN",
        "STORAGE_ERROR",
        "CONNECTION_CLOSED",
        "TIMEOUT",
        "FRAME_TIMEOUT",
        "UNAVAILABLE",
    }
)


def is_retriable(code: str) -> bool:
    return code in RETRIABLE_CODES


class RivvenError(Exception):
    """A failed call: ``code`` is from the one table, ``retriable`` says whether the same call may succeed later,
    ``index`` names the offending list element (AlterQuotas) where there is one."""

    def __init__(self, code: str, message: str, index: int | None = None) -> None:
        # A code this client does not know is a server bug from its point of view (docs: conformance README).
        self.code: str = code if code in ERROR_CODES else "INTERNAL_ERROR"
        self.index: int | None = index
        super().__init__(message if code in ERROR_CODES else f"{code[:64]}: {message}")

    @property
    def retriable(self) -> bool:
        return self.code in RETRIABLE_CODES

    def __repr__(self) -> str:
        return f"RivvenError({self.code!r}, {str(self)!r})"
