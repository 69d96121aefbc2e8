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
	"sync"
	"time"

	"github.com/credits-dev/credits"
)

// MaxBodyBytes bounds a request body (1 MiB); more gets 413.
const MaxBodyBytes = 1 << 20

// decodeBody reads one JSON object from the request into v, rejecting
// unknown fields, trailing data and bodies over MaxBodyBytes. Errors name the
// field at fault.
func decodeBody(r *http.Request, v any) error {
	buf := bodyBuffers.Get().(*[]byte)
	defer putBodyBuffer(buf)
	body, err := readBody(r.Body, (*buf)[:0], r.ContentLength)
	*buf = body
	if err != nil {
		return credits.Invalid("body", "the body could not be read")
	}
	if len(body) > MaxBodyBytes {
		return credits.Errorf(credits.CodePayloadTooLarge, "the body is larger than %d bytes", MaxBodyBytes)
	}
	// The decoder copies what it keeps (strings, raw messages): the
	// buffer goes back to the pool afterwards.
	return decodeJSON(body, v)
}

// bodyBuffers holds request bodies while they are decoded, so that reading
// one allocates nothing once the pool is warm.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putBodyBuffer returns a buffer to the pool, unless a large body made it
// large: the pool keeps only small ones.
func putBodyBuffer(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	bodyBuffers.Put(b)
}

// readBody appends the body to buf, reading at most MaxBodyBytes+1 bytes
// (so that a larger body is seen to be larger). A known length sizes the
// buffer at once.
func readBody(rd io.Reader, buf []byte, length int64) ([]byte, error) {
	const limit = MaxBodyBytes + 1
	if length > 0 && int64(cap(buf)) < min(length+1, limit) {
		buf = make([]byte, 0, min(length+1, limit))
	}
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
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
	// Only JSON whitespace may follow the object.
	for _, c := range body[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return credits.Invalid("body", "the body has data after the JSON object")
		}
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
