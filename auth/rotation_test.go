package auth

import (
	"context"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// Key rotation without downtime: the previous admin key works beside the
// new one until its expiry, then only the new one does.
func TestAdminKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	until := start.Add(time.Hour)
	clk := &clock{t: start}
	a, generated, err := New(ctx, newMemStore(), Options{
		AdminKey: "cra_new", PreviousAdminKey: "cra_old", PreviousAdminKeyUntil: until, NowFunc: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if generated != "" {
		t.Fatalf("generated a key %q though one is configured", generated)
	}
	tests := []struct {
		name     string
		at       time.Time
		old, new bool
	}{
		{"at the start", start, true, true},
		{"just before the expiry", until.Add(-time.Nanosecond), true, true},
		{"at the expiry", until, false, true},
		{"after the expiry", until.Add(24 * time.Hour), false, true},
		{"the clock goes back", start, true, true},
	}
	for _, tc := range tests {
		clk.Set(tc.at)
		for key, want := range map[string]bool{"cra_old": tc.old, "cra_new": tc.new, "cra_other": false, "cra_ol": false, "cra_old ": false} {
			p, err := a.Authenticate(ctx, key)
			if got := err == nil; got != want {
				t.Errorf("%s: %q accepted %v, want %v (err %v)", tc.name, key, got, want, err)
				continue
			}
			if want && (p.Kind != KindAdminKey || p.Scope != ScopeAdmin) {
				t.Errorf("%s: %q is %+v", tc.name, key, p)
			}
			if !want && credits.ErrorCode(err) != credits.CodeUnauthorized {
				t.Errorf("%s: %q: error %v, want unauthorized", tc.name, key, err)
			}
		}
	}
}

// A previous key without an expiry is refused at start: it would stay valid
// for ever by oversight.
func TestPreviousAdminKeyNeedsExpiry(t *testing.T) {
	t.Parallel()
	_, _, err := New(context.Background(), newMemStore(), Options{AdminKey: "cra_new", PreviousAdminKey: "cra_old"})
	if e := credits.AsError(err); e == nil || e.Code != credits.CodeInvalidRequest {
		t.Fatalf("error %v, want invalid_request", err)
	}
}

// Rotating away from a generated key: the generated key (only its hash is
// stored) is the current one; a configured previous key works beside it.
func TestRotationWithGeneratedKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &clock{t: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	st := newMemStore()
	a, generated, err := New(ctx, st, Options{PreviousAdminKey: "cra_old", PreviousAdminKeyUntil: clk.t.Add(time.Minute), NowFunc: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if generated == "" {
		t.Fatal("no key generated")
	}
	for _, k := range []string{generated, "cra_old"} {
		if _, err := a.Authenticate(ctx, k); err != nil {
			t.Fatalf("%q: %v", k, err)
		}
	}
	clk.Set(clk.t.Add(time.Minute))
	if _, err := a.Authenticate(ctx, "cra_old"); err == nil {
		t.Fatal("the previous key works after its expiry")
	}
	if _, err := a.Authenticate(ctx, generated); err != nil {
		t.Fatal(err)
	}
}
