package auth

import (
	"context"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// A revoked API key is refused; revoking again changes nothing; the other
// keys keep working.
func TestRevokeAPIKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &clock{t: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	a, _, err := New(ctx, newMemStore(), Options{AdminKey: "cra_admin", NowFunc: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	victim, victimSecret, err := a.CreateAPIKey(ctx, "victim", ScopeService)
	if err != nil {
		t.Fatal(err)
	}
	_, otherSecret, err := a.CreateAPIKey(ctx, "other", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(ctx, victimSecret); err != nil || p.KeyID != victim.ID {
		t.Fatalf("before revocation: %+v, %v", p, err)
	}

	clk.Set(clk.t.Add(time.Minute))
	k, err := a.RevokeAPIKey(ctx, victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k.RevokedAt == nil || !k.RevokedAt.Equal(clk.t) {
		t.Fatalf("revoked %+v, want revoked_at %s", k, clk.t)
	}
	if _, err := a.Authenticate(ctx, victimSecret); credits.ErrorCode(err) != credits.CodeUnauthorized {
		t.Fatalf("a revoked key: %v, want unauthorized", err)
	}
	if _, err := a.Authenticate(ctx, otherSecret); err != nil {
		t.Fatalf("another key after a revocation: %v", err)
	}

	clk.Set(clk.t.Add(time.Minute))
	again, err := a.RevokeAPIKey(ctx, victim.ID)
	if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(*k.RevokedAt) {
		t.Fatalf("revoking again: %+v, %v; want revoked_at kept at %s", again, err, k.RevokedAt)
	}
	for _, id := range []string{"", "key_nope", "key_\x00"} {
		if _, err := a.RevokeAPIKey(ctx, id); credits.ErrorCode(err) != credits.CodeNotFound {
			t.Errorf("revoking %q: %v, want not_found", id, err)
		}
	}
	keys, err := a.APIKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %+v, %v", keys, err)
	}
	for _, k := range keys {
		if (k.RevokedAt != nil) != (k.ID == victim.ID) {
			t.Errorf("listed %+v", k)
		}
	}
}
