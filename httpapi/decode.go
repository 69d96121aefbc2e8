package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/credits-dev/credits"
)

// MaxBodyBytes bounds a request body (1 MiB); more gets 413.
const MaxBodyBytes = 1 << 20

// decodeBody reads one JSON object from the request into v, rejecting
// unknown fields, trailing data and bodies over MaxBodyBytes. Errors name the
// field at fault.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return credits.Invalid("body", "the body could not be read")
	}
	if len(body) > MaxBodyBytes {
		return credits.Errorf(credits.CodePayloadTooLarge, "the body is larger than %d bytes", MaxBodyBytes)
	}
	return decodeJSON(body, v)
}

// decodeJSON is the decoder every request body goes through; it is fuzzed.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return credits.Invalid("body", "a JSON object body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return credits.Invalid("body", "the body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return credits.Invalid("body", "the body has data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tim *time.ParseError
	switch {
	case errors.As(err, &syn):
		return credits.Invalid("body", "the body is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return credits.Invalid("body", "the body must be a JSON object")
		}
		return credits.Invalid(field, "%s must be %s", field, jsonKind(typ.Type.Kind().String()))
	case errors.As(err, &tim):
		return credits.Invalid("body", "a time is not RFC 3339: %q", tim.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return credits.Invalid("body", "the body is not valid JSON (it ends early)")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// The name comes Go-quoted (%q): unquote it, so a name with
		// quotes or escapes is given back as sent. A field with an
		// empty name cannot be named: the body is at fault.
		if u, err := strconv.Unquote(f); err == nil {
			f = u
		}
		if f == "" {
			return credits.Invalid("body", "the body has a field with an empty name")
		}
		return credits.Invalid(f, "unknown field %q", f)
	}
	return credits.Invalid("body", "the body is not valid JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "int64", "int", "int32":
		return "an integer"
	case "string", "ptr":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return fmt.Sprintf("a JSON %s", k)
}
