package rivven

import (
	"context"
	"errors"
	"fmt"
)

// Code is an error code from the one error table (docs/protocol.md, "Error codes"). A Code is itself an error,
// so errors.Is(err, rivven.CodeTimeout) asks whether err carries that code; the Err* variables name the ones
// a broker most often checks.
type Code string

// The error table, in the order of docs/protocol.md. The client-side codes (CONNECTION_CLOSED, TIMEOUT,
// UNEXPECTED_REPLY, UNAVAILABLE) are made by the client, never sent by the server.
const (
	CodeInvalidFrame           Code = "INVALID_FRAME"
	CodeFrameTooLarge          Code = "FRAME_TOO_LARGE"
	CodeFrameTimeout           Code = "FRAME_TIMEOUT"
	CodeInvalidRequest         Code = "INVALID_REQUEST"
	CodeUnknownRequestType     Code = "UNKNOWN_REQUEST_TYPE"
	CodeUnsupportedVersion     Code = "UNSUPPORTED_VERSION"
	CodeAuthenticationRequired Code = "AUTHENTICATION_REQUIRED"
	CodeAuthenticationFailed   Code = "AUTHENTICATION_FAILED"
	CodeAuthorizationFailed    Code = "AUTHORIZATION_FAILED"
	CodeInvalidEntity          Code = "INVALID_ENTITY"
	CodeInvalidQuotaKey        Code = "INVALID_QUOTA_KEY"
	CodeInvalidQuotaValue      Code = "INVALID_QUOTA_VALUE"
	CodeDuplicateAlteration    Code = "DUPLICATE_ALTERATION"
	CodeTooManyItems           Code = "TOO_MANY_ITEMS"
	CodeUnknownTier            Code = "UNKNOWN_TIER"
	CodeTierInUse              Code = "TIER_IN_USE"
	CodeTooManyEntities        Code = "TOO_MANY_ENTITIES"
	CodeReplyTooLarge          Code = "REPLY_TOO_LARGE"
	CodeStorageError           Code = "STORAGE_ERROR"
	CodeOverloaded             Code = "OVERLOADED"
	CodeShuttingDown           Code = "SHUTTING_DOWN"
	CodeConnectionClosed       Code = "CONNECTION_CLOSED"
	CodeTimeout                Code = "TIMEOUT"
	CodeUnavailable            Code = "UNAVAILABLE"
	CodeUnexpectedReply        Code = "UNEXPECTED_REPLY"
	CodeInternalError          Code = "INTERNAL_ERROR"
)

// Sentinels for errors.Is: each matches every *Error with its code.
var (
	// ErrOverloaded: the sidecar sheds load, or MaxPending calls are in flight.
	ErrOverloaded error = CodeOverloaded
	// ErrTimeout: no reply within the call's deadline (its timeout or its context's deadline).
	ErrTimeout error = CodeTimeout
	// ErrClosed: the connection (or the client) closed before the reply arrived.
	ErrClosed error = CodeConnectionClosed
	// ErrUnavailable: the call was not sent (no connection and the call may not wait, or the breaker is open).
	ErrUnavailable error = CodeUnavailable
	// ErrUnexpectedReply: the server's reply is not one this call expects.
	ErrUnexpectedReply error = CodeUnexpectedReply
)

// retriable: the codes after which the same request may succeed later unchanged.
var retriable = map[Code]bool{
	CodeFrameTimeout: true, CodeStorageError: true, CodeOverloaded: true, CodeShuttingDown: true,
	CodeConnectionClosed: true, CodeTimeout: true, CodeUnavailable: true,
}

// Codes lists the whole table, in its documented order.
var Codes = []Code{
	CodeInvalidFrame, CodeFrameTooLarge, CodeFrameTimeout, CodeInvalidRequest, CodeUnknownRequestType,
	CodeUnsupportedVersion, CodeAuthenticationRequired, CodeAuthenticationFailed, CodeAuthorizationFailed,
	CodeInvalidEntity, CodeInvalidQuotaKey, CodeInvalidQuotaValue, CodeDuplicateAlteration, CodeTooManyItems,
	CodeUnknownTier, CodeTierInUse, CodeTooManyEntities, CodeReplyTooLarge, CodeStorageError, CodeOverloaded,
	CodeShuttingDown, CodeConnectionClosed, CodeTimeout, CodeUnavailable, CodeUnexpectedReply, CodeInternalError,
}

var known = func() map[Code]bool {
	m := make(map[Code]bool, len(Codes))
	for _, c := range Codes {
		m[c] = true
	}
	return m
}()

// Error implements error, so a Code can be the target of errors.Is.
func (c Code) Error() string { return "rivven: " + string(c) }

// Retriable reports whether a request failed with this code may succeed later unchanged.
func (c Code) Retriable() bool { return retriable[c] }

// codeFromWire maps a server's code to the table; a code this client does not know is INTERNAL_ERROR.
func codeFromWire(s string) Code {
	if c := Code(s); known[c] {
		return c
	}
	return CodeInternalError
}

// Error is every failure of a call: the code from the one table, the server's message and, for AlterQuotas,
// the index of the alteration at fault (-1 when none). errors.Is(err, rivven.ErrTimeout) and
// errors.Is(err, rivven.CodeInvalidEntity) match on the code; a call that ran out of its context's deadline or
// was cancelled also matches context.DeadlineExceeded or context.Canceled.
type Error struct {
	Code    Code
	Message string
	Index   int
	cause   error
}

func newError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Index: -1}
}

func (e *Error) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("rivven: %s: %s (alteration %d)", string(e.Code), e.Message, e.Index)
	}
	return fmt.Sprintf("rivven: %s: %s", string(e.Code), e.Message)
}

// Retriable reports whether the same request may succeed later unchanged (the table's retriable flag).
func (e *Error) Retriable() bool { return e.Code.Retriable() }

// Is matches a Code (and so the Err* sentinels) equal to e's.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Unwrap returns the cause: a network error, or the context's error for a cancelled call.
func (e *Error) Unwrap() error { return e.cause }

// ctxError: a context that ended before the reply is a TIMEOUT (the caller stopped waiting) wrapping the
// context's error, so errors.Is tells a deadline from a cancellation.
func ctxError(ctx context.Context) *Error {
	err := ctx.Err()
	msg := "the context's deadline passed before the reply"
	if errors.Is(err, context.Canceled) {
		msg = "the context was cancelled before the reply"
	}
	return &Error{Code: CodeTimeout, Message: msg, Index: -1, cause: err}
}
