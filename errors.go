package credits

import (
	"errors"
	"fmt"
)

// Error codes: stable snake_case strings, part of the public contract. The HTTP
// layer maps each to a status in one table.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeConflict             = "conflict"
	CodeInsufficientCredits  = "insufficient_credits"
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	CodeRequestInProgress    = "request_in_progress"
	CodeChargeNotHeld        = "charge_not_held"
	CodePayloadTooLarge      = "payload_too_large"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeRateLimited          = "rate_limited"
	CodeOperationFailed      = "operation_failed"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
)

// Upgrade names a plan that would let a refused operation succeed.
type Upgrade struct {
	Plan           string `json:"plan"`
	MonthlyCredits int64  `json:"monthly_credits"`
	PriceCents     int64  `json:"price_cents"`
}

// Insufficient is the detail of an insufficient_credits error.
type Insufficient struct {
	Balance   int64    `json:"balance"`
	Required  int64    `json:"required"`
	Shortfall int64    `json:"shortfall"`
	Plan      string   `json:"plan"`
	Upgrade   *Upgrade `json:"upgrade"`
}

// Error is the one error type of the domain. Field names the offending input
// (a JSON field, a query parameter or a header) when there is one.
type Error struct {
	Code         string
	Message      string
	Field        string
	Insufficient *Insufficient
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return e.Code + ": " + e.Message
}

// Errorf makes an *Error with a code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid makes an invalid_request error naming a field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound makes a not_found error for a kind of thing and its id.
func NotFound(kind, id string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("no %s %q", kind, id)}
}

// ErrorCode returns the code of err, CodeInternal for foreign errors and ""
// for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e := AsError(err); e != nil {
		return e.Code
	}
	return CodeInternal
}

// AsError returns err's *Error, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return nil
}
