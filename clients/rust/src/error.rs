//! The one error table (src/protocol/error-codes.ts, docs/protocol.md "Error codes") and the client's error.

use std::fmt;

/// A code from the one error table shared by server, clients, CLI and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidFrame,
    FrameTooLarge,
    FrameTimeout,
    InvalidRequest,
    UnknownRequestType,
    UnsupportedVersion,
    AuthenticationRequired,
    AuthenticationFailed,
    AuthorizationFailed,
    InvalidEntity,
    InvalidQuotaKey,
    InvalidQuotaValue,
    DuplicateAlteration,
    TooManyItems,
    UnknownTier,
    TierInUse,
    TooManyEntities,
    ReplyTooLarge,
    StorageError,
    Overloaded,
    ShuttingDown,
    ConnectionClosed,
    Timeout,
    Unavailable,
    UnexpectedReply,
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order of the table.
    pub const ALL: [ErrorCode; 26] = [
        Self::InvalidFrame,
        Self::FrameTooLarge,
        Self::FrameTimeout,
        Self::InvalidRequest,
        Self::UnknownRequestType,
        Self::UnsupportedVersion,
        Self::AuthenticationRequired,
        Self::AuthenticationFailed,
        Self::AuthorizationFailed,
        Self::InvalidEntity,
        Self::InvalidQuotaKey,
        Self::InvalidQuotaValue,
        Self::DuplicateAlteration,
        Self::TooManyItems,
        Self::UnknownTier,
        Self::TierInUse,
        Self::TooManyEntities,
        Self::ReplyTooLarge,
        Self::StorageError,
        Self::Overloaded,
        Self::ShuttingDown,
        Self::ConnectionClosed,
        Self::Timeout,
        Self::Unavailable,
        Self::UnexpectedReply,
        Self::InternalError,
    ];

    /// The code as the wire spells it, e.g. `"TIMEOUT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFrame => "INVALID_FRAME",
            Self::FrameTooLarge => "FRAME_TOO_LARGE",
            Self::FrameTimeout => "FRAME_TIMEOUT",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::UnknownRequestType => "UNKNOWN_REQUEST_TYPE",
            Self::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Self::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            Self::AuthenticationFailed => "AUTHENTICATION_FAILED",
            Self::AuthorizationFailed => "AUTHORIZATION_FAILED",
            Self::InvalidEntity => "INVALID_ENTITY",
            Self::InvalidQuotaKey => "INVALID_QUOTA_KEY",
            Self::InvalidQuotaValue => "INVALID_QUOTA_VALUE",
            Self::DuplicateAlteration => "DUPLICATE_ALTERATION",
            Self::TooManyItems => "TOO_MANY_ITEMS",
            Self::UnknownTier => "UNKNOWN_TIER",
            Self::TierInUse => "TIER_IN_USE",
            Self::TooManyEntities => "TOO_MANY_ENTITIES",
            Self::ReplyTooLarge => "REPLY_TOO_LARGE",
            Self::StorageError => "STORAGE_ERROR",
            Self::Overloaded => "OVERLOADED",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::ConnectionClosed => "CONNECTION_CLOSED",
            Self::Timeout => "TIMEOUT",
            Self::Unavailable => "UNAVAILABLE",
            Self::UnexpectedReply => "UNEXPECTED_REPLY",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }

    /// The code a wire string names; a code this client does not know (a newer server's) is `INTERNAL_ERROR`.
    pub fn from_wire(s: &str) -> ErrorCode {
        Self::ALL.iter().copied().find(|c| c.as_str() == s).unwrap_or(Self::InternalError)
    }

    /// True when the same request may succeed later unchanged (`RETRIABLE_CODES`): the sidecar was busy,
    /// going away, or did not answer. Clients retry or fail open on these; any other code means the request
    /// itself must change.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            Self::Overloaded
                | Self::ShuttingDown
                | Self::StorageError
                | Self::ConnectionClosed
                | Self::Timeout
                | Self::FrameTimeout
                | Self::Unavailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every way a call can fail. Each variant maps to one code of the error table ([`Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sidecar answered with an `Error` reply. `index` names the offending list element, if any.
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String, index: Option<u64> },
    /// The connection closed (or could not be made) before the reply arrived; the request may or may not
    /// have been applied.
    #[error("CONNECTION_CLOSED: {0}")]
    ConnectionClosed(String),
    /// No reply within the call's timeout (or the connect timeout).
    #[error("TIMEOUT: {0}")]
    Timeout(String),
    /// The call was not sent: no connection and the call was fail-fast.
    #[error("UNAVAILABLE: {0}")]
    Unavailable(String),
    /// `max_pending` calls are already in flight; the call was not sent.
    #[error("OVERLOADED: {0}")]
    Overloaded(String),
    /// The request cannot be sent as it is (it cannot be encoded, or is too large for a frame).
    #[error("INVALID_REQUEST: {0}")]
    InvalidRequest(String),
    /// The sidecar's reply is not one this call expects (wrong type, undecodable body).
    #[error("UNEXPECTED_REPLY: {0}")]
    UnexpectedReply(String),
}

impl Error {
    /// The code of the error table this error carries.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Server { code, .. } => *code,
            Self::ConnectionClosed(_) => ErrorCode::ConnectionClosed,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Overloaded(_) => ErrorCode::Overloaded,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::UnexpectedReply(_) => ErrorCode::UnexpectedReply,
        }
    }

    /// Whether the same call may succeed later unchanged (see [`ErrorCode::is_retriable`]).
    pub fn is_retriable(&self) -> bool {
        self.code().is_retriable()
    }

    /// The 0-based index of the offending list element (AlterQuotas), when the server named one.
    pub fn index(&self) -> Option<u64> {
        match self {
            Self::Server { index, .. } => *index,
            _ => None,
        }
    }
}

/// The result of every client call.
pub type Result<T> = std::result::Result<T, Error>;
