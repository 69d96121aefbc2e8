package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/credits-dev/credits"
)

// The charge is the answer of every hold, capture and release: the hot
// path. appendChargeView writes it as encoding/json does (the same bytes,
// checked by TestAppendChargeViewMatchesEncodingJSON and its fuzz target),
// without reflection and without the allocation of each time's MarshalJSON.
// Anything it does not handle exactly (a string that needs escaping, a
// year outside 0–9999) makes it report false, and the caller falls back to
// encoding/json.

// jsonBuffers hold answers while they are written.
var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeCharge writes a charge answer like writeJSON.
func writeCharge(w http.ResponseWriter, status int, v *credits.ChargeView) {
	buf := jsonBuffers.Get().(*[]byte)
	b, ok := appendChargeView((*buf)[:0], v)
	if !ok {
		jsonBuffers.Put(buf)
		writeJSON(w, status, v)
		return
	}
	b = append(b, '\n') // as json.Encoder ends a value
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 {
		*buf = b[:0]
		jsonBuffers.Put(buf)
	}
}

// appendChargeView appends v as encoding/json would, or reports false.
func appendChargeView(b []byte, v *credits.ChargeView) ([]byte, bool) {
	c := &v.Charge
	ok := true
	b = append(b, `{"id":`...)
	b, ok = appendString(b, c.ID, ok)
	b = append(b, `,"workspace_id":`...)
	b, ok = appendString(b, c.WorkspaceID, ok)
	b = append(b, `,"operation":`...)
	b, ok = appendString(b, c.Operation, ok)
	b = append(b, `,"quantity":`...)
	b = strconv.AppendInt(b, c.Quantity, 10)
	b = append(b, `,"cost":`...)
	b = strconv.AppendInt(b, c.Cost, 10)
	b = append(b, `,"status":`...)
	b, ok = appendString(b, c.Status, ok)
	b = append(b, `,"member_id":`...)
	if c.MemberID == nil {
		b = append(b, "null"...)
	} else {
		b, ok = appendString(b, *c.MemberID, ok)
	}
	b = append(b, `,"metadata":`...)
	if c.Metadata == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		keys := make([]string, 0, len(c.Metadata))
		for k := range c.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b, ok = appendString(b, k, ok)
			b = append(b, ':')
			b, ok = appendString(b, c.Metadata[k], ok)
		}
		b = append(b, '}')
	}
	b = append(b, `,"created_at":`...)
	b, ok = appendTime(b, c.CreatedAt, ok)
	b = append(b, `,"expires_at":`...)
	b, ok = appendTime(b, c.ExpiresAt, ok)
	if bal := v.Balance; bal != nil {
		b = append(b, `,"balance":{"workspace_id":`...)
		b, ok = appendString(b, bal.WorkspaceID, ok)
		b = append(b, `,"plan":`...)
		b, ok = appendString(b, bal.Plan, ok)
		b = append(b, `,"monthly_credits":`...)
		b = strconv.AppendInt(b, bal.MonthlyCredits, 10)
		b = append(b, `,"granted":`...)
		b = strconv.AppendInt(b, bal.Granted, 10)
		b = append(b, `,"available":`...)
		b = strconv.AppendInt(b, bal.Available, 10)
		b = append(b, `,"held":`...)
		b = strconv.AppendInt(b, bal.Held, 10)
		b = append(b, `,"used":`...)
		b = strconv.AppendInt(b, bal.Used, 10)
		b = append(b, `,"cycle_start":`...)
		b, ok = appendTime(b, bal.CycleStart, ok)
		b = append(b, `,"cycle_end":`...)
		b, ok = appendTime(b, bal.CycleEnd, ok)
		b = append(b, '}')
	}
	b = append(b, '}')
	return b, ok
}

// appendString appends s quoted when no byte of it needs escaping (printable
// ASCII other than ", \ and the HTML-escaped <, >, &); otherwise it defers
// to encoding/json.
func appendString(b []byte, s string, ok bool) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil {
				return b, false
			}
			return append(b, q...), ok
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), ok
}

// appendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds), which fails on years outside 0–9999 and on zone offsets of
// a day or more: those are left to encoding/json.
func appendTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), ok
}
