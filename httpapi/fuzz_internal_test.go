package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/credits-dev/credits"
)

// The decoder fuzz targets feed request bodies to decodeBody (and so
// decodeJSON) as every handler does. Whatever the body, the decoder must not
// panic, and any error must be a *credits.Error with code invalid_request
// (payload_too_large for oversized bodies) naming a field.

// bodySeeds are bodies every target starts from: valid ones of each request
// type and the classic ways JSON goes wrong.
var bodySeeds = []string{
	`{"operation":"image_1k"}`,
	`{"operation":"content_rewrite","quantity":3,"member_id":"m1","capture":true,"hold_seconds":60,"metadata":{"page":"home"}}`,
	`{"id":"acme","name":"Acme","plan":"starter","cycle_anchor":"2025-01-31T09:00:00Z"}`,
	`{"items":[{"operation":"section_generation","count":10},{"operation":"image_1k","count":3}]}`,
	`{"plan":"pro"}`,
	`{"member_id":"m1","ttl_seconds":600}`,
	`{"name":"ci","scope":"service"}`,
	`{}`,
	``,
	`   `,
	`null`,
	`[]`,
	`"string"`,
	`42`,
	`{`,
	`{"operation":`,
	`{"operation":"image_1k",}`,
	`{"operation":"image_1k"} {}`,
	`{"operation":"image_1k"}]`,
	`{"quantity":"2"}`,
	`{"quantity":1.5}`,
	`{"quantity":1e400}`,
	`{"quantity":-1}`,
	`{"quantity":9223372036854775808}`,
	`{"hold_seconds":3601}`,
	`{"capture":"yes"}`,
	`{"metadata":["a"]}`,
	`{"metadata":{"a":1}}`,
	`{"items":[{"count":"x"}]}`,
	`{"items":{}}`,
	`{"ttl_seconds":"60"}`,
	`{"cycle_anchor":5}`,
	`{"unknown":1}`,
	`{"":1}`,
	`{"a\"b":1}`,
	`{"\u00e9":1}`,
	`{"Operation":"image_1k"}`,
	`{"operation":"image_1k","operation":"image_2k"}`,
	"{\"operation\":\"\xff\"}",
	"\xef\xbb\xbf{}",
	`{"operation":"image_1k"}` + strings.Repeat(" ", 64),
}

func seed(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
}

// checkDecode decodes body into v through decodeBody and asserts the error
// contract. It reports whether the body decoded.
func checkDecode(t *testing.T, body []byte, v any) bool {
	t.Helper()
	r, err := http.NewRequest("POST", "/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	err = decodeBody(r, v)
	if err == nil {
		if len(body) > MaxBodyBytes {
			t.Fatalf("a body of %d bytes was accepted", len(body))
		}
		return true
	}
	checkError(t, err, len(body) > MaxBodyBytes)
	return false
}

func checkError(t *testing.T, err error, tooLarge bool) {
	t.Helper()
	e, ok := err.(*credits.Error)
	if !ok {
		t.Fatalf("error %T %v is not a *credits.Error", err, err)
	}
	if tooLarge {
		if e.Code != credits.CodePayloadTooLarge {
			t.Fatalf("error %v for an oversized body, want payload_too_large", e)
		}
		return
	}
	if e.Code != credits.CodeInvalidRequest {
		t.Fatalf("error code %q (%v), want invalid_request", e.Code, e)
	}
	if e.Field == "" {
		t.Fatalf("error %v names no field", e)
	}
	if e.Message == "" {
		t.Fatalf("error %v has no message", e)
	}
	if _, ok := statusOf[e.Code]; !ok {
		t.Fatalf("code %q has no status", e.Code)
	}
}

func FuzzDecodeCharge(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ChargeRequest
		if !checkDecode(t, body, &req) {
			return
		}
		// The request's own checks name a field too.
		if _, err := req.HoldParams("w", "key"); err != nil {
			checkError(t, err, false)
		}
	})
}

func FuzzDecodeWorkspace(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req WorkspaceRequest
		checkDecode(t, body, &req)
	})
}

func FuzzDecodeEstimate(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req EstimateRequest
		if !checkDecode(t, body, &req) {
			return
		}
		cat := credits.DefaultCatalog()
		if _, err := cat.Estimate(req.Items); err != nil {
			checkError(t, err, false)
		}
	})
}

func FuzzDecodePlan(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req PlanRequest
		checkDecode(t, body, &req)
	})
}

func FuzzDecodeSessionToken(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req SessionTokenRequest
		checkDecode(t, body, &req)
	})
}

func FuzzDecodeAPIKey(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req APIKeyRequest
		checkDecode(t, body, &req)
	})
}

// An oversized body is refused as such, whatever it holds.
func TestDecodeBodyTooLarge(t *testing.T) {
	t.Parallel()
	for _, n := range []int{MaxBodyBytes + 1, MaxBodyBytes + 4096} {
		body := append([]byte(`{"operation":"image_1k"}`), bytes.Repeat([]byte(" "), n)...)
		var req ChargeRequest
		if checkDecode(t, body, &req) {
			t.Fatalf("a body of %d bytes decoded", len(body))
		}
	}
	body := append([]byte(`{"operation":"image_1k"}`), bytes.Repeat([]byte(" "), MaxBodyBytes-24)...)
	var req ChargeRequest
	if !checkDecode(t, body, &req) {
		t.Fatal("a body of exactly 1 MiB was refused")
	}
}

// Errors name the field as the client spelled it.
func TestDecodeFieldNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, field string }{
		{`{"operation":"image_1k","x":1}`, "x"},
		{`{"a\"b":1}`, `a"b`},
		{`{"\u00e9t\u00e9":1}`, "été"},
		{`{"":1}`, "body"},
		{`{"quantity":"2"}`, "quantity"},
		{`{"metadata":{"k":1}}`, "metadata"},
		{`[1]`, "body"},
	} {
		var req ChargeRequest
		r, _ := http.NewRequest("POST", "/", strings.NewReader(tc.body))
		err := decodeBody(r, &req)
		if e := credits.AsError(err); e == nil || e.Field != tc.field || e.Code != credits.CodeInvalidRequest {
			t.Errorf("%s: error %v, want invalid_request naming %q", tc.body, err, tc.field)
		}
	}
}
