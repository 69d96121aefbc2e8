package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzCharges posts random bodies (and Idempotency-Keys) to
// POST /v1/workspaces/{id}/charges through the real server: the answer is
// always 201, 400, 402, 409 or 413, a refusal is problem+json, and a refusal
// never changes the balance.
func FuzzCharges(f *testing.F) {
	for _, s := range []struct{ key, body string }{
		{"k1", `{"operation":"image_1k"}`},
		{"k1", `{"operation":"image_2k"}`},
		{"k2", `{"operation":"content_rewrite","quantity":3,"member_id":"m1","capture":true,"hold_seconds":60,"metadata":{"page":"home"}}`},
		{"k3", `{"operation":"image_2k","quantity":1000000}`},
		{"k4", `{"operation":"avatar_selection","capture":true}`},
		{"k5", `{"operation":"image_1k","quantity":0}`},
		{"k5", `{"operation":"image_1k","quantity":"2"}`},
		{"k6", `{"operation":"image_1k","hold_seconds":3601}`},
		{"k7", `{"operation":"image_1k","member_id":""}`},
		{"k8", `{"operation":"video"}`},
		{"k9", `{"operation":"image_1k","x":1}`},
		{"k10", `{"operation":`},
		{"k11", ``},
		{"k12", `[]`},
		{"k13", `{"":1}`},
		{"", `{"operation":"image_1k"}`},
		{strings.Repeat("k", 256), `{"operation":"image_1k"}`},
		{"k14", `{"operation":"image_1k","metadata":{"` + strings.Repeat("k", 41) + `":"v"}}`},
	} {
		f.Add(s.key, []byte(s.body))
	}
	b, _ := newBundle(f)
	ctx := context.Background()
	const ws = "fz"
	if _, _, err := b.engine.CreateWorkspace(ctx, ledgerParams(ws)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		// Keep credits to spend, so that 201 and 402 both stay reachable.
		if bal, err := b.engine.Balance(ctx, ws); err != nil {
			t.Fatal(err)
		} else if bal.Available < 100 {
			if _, err := b.engine.Adjust(ctx, ws, 5000, "fuzz top-up"); err != nil {
				t.Fatal(err)
			}
		}
		before, err := b.engine.Balance(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		// A header value carries printable ASCII only.
		key = strings.Map(func(r rune) rune {
			if r > ' ' && r < 0x7f {
				return r
			}
			return -1
		}, key)
		var hdr []string
		if key != "" {
			hdr = append(hdr, "Idempotency-Key: "+key)
		}
		r := b.req(t, "POST", "/v1/workspaces/"+ws+"/charges", adminKey, body, hdr...)
		if !slices.Contains([]int{201, 400, 402, 409, 413}, r.status) {
			t.Fatalf("status %d for key %q body %q: %s", r.status, key, body, r.body)
		}
		if r.status == http.StatusCreated {
			c := r.json(t)
			if c["workspace_id"] != ws || c["id"] == "" {
				t.Fatalf("charge %s", r.body)
			}
			return
		}
		p := r.json(t)
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("content type %q for status %d", ct, r.status)
		}
		want := map[int][]string{400: {"invalid_request"}, 402: {"insufficient_credits"}, 409: {"idempotency_key_reused", "request_in_progress"}, 413: {"payload_too_large"}}[r.status]
		code, _ := p["code"].(string)
		if !slices.Contains(want, code) || p["status"] != float64(r.status) {
			t.Fatalf("problem %s for status %d", r.body, r.status)
		}
		if r.status == http.StatusBadRequest {
			if f, _ := p["field"].(string); f == "" {
				t.Fatalf("a 400 names no field: %s (body %q)", r.body, body)
			}
		}
		after, err := b.engine.Balance(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Fatalf("a %d changed the balance: %+v, was %+v (body %q)", r.status, after, before, body)
		}
	})
}
