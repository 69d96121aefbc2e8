package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/credits-dev/credits"
)

// statusOf maps every error code to its HTTP status: the one table.
var statusOf = map[string]int{
	credits.CodeInvalidRequest:       http.StatusBadRequest,
	credits.CodeUnauthorized:         http.StatusUnauthorized,
	credits.CodeInsufficientCredits:  http.StatusPaymentRequired,
	credits.CodeForbidden:            http.StatusForbidden,
	credits.CodeNotFound:             http.StatusNotFound,
	credits.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	credits.CodeConflict:             http.StatusConflict,
	credits.CodeIdempotencyKeyReused: http.StatusConflict,
	credits.CodeRequestInProgress:    http.StatusConflict,
	credits.CodeChargeNotHeld:        http.StatusConflict,
	credits.CodePayloadTooLarge:      http.StatusRequestEntityTooLarge,
	credits.CodeRateLimited:          http.StatusTooManyRequests,
	credits.CodeInternal:             http.StatusInternalServerError,
	credits.CodeOperationFailed:      http.StatusBadGateway,
	credits.CodeUnavailable:          http.StatusServiceUnavailable,
}

var titleOf = map[string]string{
	credits.CodeInvalidRequest:       "Invalid request",
	credits.CodeUnauthorized:         "Unauthorized",
	credits.CodeInsufficientCredits:  "Insufficient credits",
	credits.CodeForbidden:            "Forbidden",
	credits.CodeNotFound:             "Not found",
	credits.CodeMethodNotAllowed:     "Method not allowed",
	credits.CodeConflict:             "Conflict",
	credits.CodeIdempotencyKeyReused: "Idempotency key reused",
	credits.CodeRequestInProgress:    "Request in progress",
	credits.CodeChargeNotHeld:        "Charge not held",
	credits.CodePayloadTooLarge:      "Payload too large",
	credits.CodeRateLimited:          "Too many requests",
	credits.CodeInternal:             "Internal error",
	credits.CodeOperationFailed:      "Operation failed",
	credits.CodeUnavailable:          "Service unavailable",
}

// Problem is an RFC 9457 problem document with the service's extensions.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
	*credits.Insufficient
}

// problemFor turns any error into a problem. Errors that are not the
// domain's are store or program failures: the store's become 503 (nothing
// was charged), anything else is logged and hidden behind 500.
func problemFor(err error) Problem {
	e := credits.AsError(err)
	if e == nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			e = credits.Errorf(credits.CodeUnavailable, "the request timed out; nothing was charged")
		default:
			e = credits.Errorf(credits.CodeUnavailable, "the store is unavailable; nothing was charged")
		}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return Problem{
		Type:         "urn:credits:problem:" + e.Code,
		Title:        titleOf[e.Code],
		Status:       status,
		Detail:       e.Message,
		Code:         e.Code,
		Field:        e.Field,
		Insufficient: e.Insufficient,
	}
}

func writeProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := problemFor(err)
	if credits.AsError(err) == nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h := w.Header()
	if p.Code == credits.CodeUnavailable {
		h["Retry-After"] = retryAfter1
	}
	h["Content-Type"] = contentTypeProb
	h["Cache-Control"] = noStore
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
