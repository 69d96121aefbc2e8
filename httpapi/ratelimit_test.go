package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/httpapi"
)

// Each credential has its own bucket: the admin key, each API key, each
// session (workspace and member), and the client's address for requests
// without a valid credential. An empty bucket answers 429 rate_limited with
// Retry-After; the others are untouched; time refills it.
func TestRateLimitPerCredential(t *testing.T) {
	t.Parallel()
	const burst = 3
	b, _ := limitedServer(t, httpapi.Config{RateLimit: httpapi.RateLimit{Rate: 1, Burst: burst}}, nil)
	ctx := context.Background()
	for _, ws := range []string{"w", "w2"} {
		if _, _, err := b.engine.CreateWorkspace(ctx, ledgerParams(ws)); err != nil {
			t.Fatal(err)
		}
	}
	newKey := func(scope string) string {
		_, secret, err := b.auth.CreateAPIKey(ctx, scope+" key", scope)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	newSession := func(ws, member string) string {
		tok, _, err := b.auth.IssueSession(ws, member, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	creds := []struct {
		name, secret, path string
	}{
		{"admin key", adminKey, "/v1/workspaces/w/balance"},
		{"read key", newKey(auth.ScopeRead), "/v1/workspaces/w/balance"},
		{"another read key", newKey(auth.ScopeRead), "/v1/workspaces/w/balance"},
		{"service key", newKey(auth.ScopeService), "/v1/workspaces/w/ledger"},
		{"admin API key", newKey(auth.ScopeAdmin), "/v1/api-keys"},
		{"session of m1", newSession("w", "m1"), "/v1/workspaces/w/balance"},
		{"session of m2, same workspace", newSession("w", "m2"), "/v1/workspaces/w/balance"},
		{"session of m1 in w2", newSession("w2", "m1"), "/v1/workspaces/w2/balance"},
		{"no credential", "", "/v1/catalog"},
	}
	// Buckets empty one after the other; each emptied bucket stays empty
	// while the others are used.
	for i, c := range creds {
		for range burst {
			wantStatus(t, b.req(t, "GET", c.path, c.secret, nil), http.StatusOK)
		}
		r := b.req(t, "GET", c.path, c.secret, nil)
		wantProblem(t, r, http.StatusTooManyRequests, "rate_limited", "")
		if ra := r.header.Get("Retry-After"); ra != "1" {
			t.Fatalf("%s: Retry-After %q, want 1", c.name, ra)
		}
		for _, before := range creds[:i] {
			wantProblem(t, b.req(t, "GET", before.path, before.secret, nil), http.StatusTooManyRequests, "rate_limited", "")
		}
	}
	// Without a valid credential a request counts against the address:
	// wrong secrets are limited (no brute force), before they are checked.
	for _, secret := range []string{"crk_wrong", "crs_forged.sig", "cra_guess"} {
		wantProblem(t, b.req(t, "GET", "/v1/workspaces/w/balance", secret, nil), http.StatusTooManyRequests, "rate_limited", "")
	}
	// A load balancer's health check is never limited.
	for range 2 * burst {
		wantStatus(t, b.req(t, "GET", "/healthz", "", nil), http.StatusOK)
	}
	// Time refills every bucket, one request a second.
	b.clock.Advance(time.Second)
	for _, c := range creds {
		wantStatus(t, b.req(t, "GET", c.path, c.secret, nil), http.StatusOK)
		wantProblem(t, b.req(t, "GET", c.path, c.secret, nil), http.StatusTooManyRequests, "rate_limited", "")
	}
	b.clock.Advance(time.Minute)
	for _, c := range creds {
		for range burst {
			wantStatus(t, b.req(t, "GET", c.path, c.secret, nil), http.StatusOK)
		}
	}
}

// Retry-After is the whole seconds until the bucket has a request again.
func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate    float64
		elapsed time.Duration
		want    string
	}{
		{1, 0, "1"},
		{0.25, 0, "4"},
		{0.25, 2500 * time.Millisecond, "2"},
		{1.0 / 60, 0, "60"},
		{1.0 / 60, 59*time.Second + 500*time.Millisecond, "1"},
		{100, 0, "1"},
	} {
		t.Run(fmt.Sprint(tc.rate, tc.elapsed), func(t *testing.T) {
			t.Parallel()
			b, _ := limitedServer(t, httpapi.Config{RateLimit: httpapi.RateLimit{Rate: tc.rate, Burst: 1}}, nil)
			wantStatus(t, b.req(t, "GET", "/v1/catalog", "", nil), http.StatusOK)
			b.clock.Advance(tc.elapsed)
			r := b.req(t, "GET", "/v1/catalog", "", nil)
			wantProblem(t, r, http.StatusTooManyRequests, "rate_limited", "")
			if got := r.header.Get("Retry-After"); got != tc.want {
				t.Fatalf("Retry-After %q, want %q", got, tc.want)
			}
		})
	}
}

// A request refused with 429 charges nothing and stores no answer: the
// retry with the same Idempotency-Key runs.
func TestRateLimitedChargeRetries(t *testing.T) {
	t.Parallel()
	b, _ := limitedServer(t, httpapi.Config{RateLimit: httpapi.RateLimit{Rate: 1, Burst: 1}}, nil)
	if _, _, err := b.engine.CreateWorkspace(context.Background(), ledgerParams("w")); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"operation": "image_1k"}
	wantStatus(t, b.req(t, "GET", "/v1/workspaces/w/balance", adminKey, nil), http.StatusOK)
	before, err := b.engine.Balance(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, b.req(t, "POST", "/v1/workspaces/w/charges", adminKey, body, "Idempotency-Key: k"), http.StatusTooManyRequests, "rate_limited", "")
	if after, _ := b.engine.Balance(context.Background(), "w"); after != before {
		t.Fatalf("a refused charge changed the balance: %+v, was %+v", after, before)
	}
	b.clock.Advance(time.Second)
	wantStatus(t, b.req(t, "POST", "/v1/workspaces/w/charges", adminKey, body, "Idempotency-Key: k"), http.StatusCreated)
}
