package auth

import (
	"context"
	"testing"
	"time"
)

// A key revoked by another instance (straight in the store) keeps working
// here for at most keyCacheTTL; one revoked here stops at once.
func TestKeyCacheRevokedElsewhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &clock{t: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	st := newMemStore()
	a, _, err := New(ctx, st, Options{AdminKey: "cra_admin", NowFunc: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := a.CreateAPIKey(ctx, "k", ScopeService)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// Another instance revokes it.
	if _, err := st.RevokeAPIKey(ctx, k.ID, clk.t); err != nil {
		t.Fatal(err)
	}
	clk.Set(clk.t.Add(keyCacheTTL - time.Millisecond))
	if _, err := a.Authenticate(ctx, secret); err != nil {
		t.Fatalf("within the cache's time the key still works here: %v", err)
	}
	clk.Set(clk.t.Add(time.Millisecond))
	if _, err := a.Authenticate(ctx, secret); err == nil {
		t.Fatal("a key revoked elsewhere still works after the cache's time")
	}

	// Revoked here: refused at once, though it was just cached.
	k2, secret2, _ := a.CreateAPIKey(ctx, "k2", ScopeService)
	if _, err := a.Authenticate(ctx, secret2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeAPIKey(ctx, k2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, secret2); err == nil {
		t.Fatal("a key revoked here still works")
	}
}
