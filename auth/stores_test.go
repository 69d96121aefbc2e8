package auth_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/internal/pgtest"
	"github.com/credits-dev/credits/postgres"
	"github.com/credits-dev/credits/sqlite"
)

// Both stores keep API keys alike: looked up by hash with their revocation,
// listed oldest first with it, revoked once (a second revocation keeps the
// first time), unknown ids not_found.
func TestAPIKeyStores(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) auth.Store{
		"sqlite": func(t *testing.T) auth.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "credits.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"postgres": func(t *testing.T) auth.Store {
			st, err := postgres.Open(context.Background(), pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkAPIKeyStore(t, open(t))
		})
	}
}

func checkAPIKeyStore(t *testing.T, st auth.Store) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)
	keys := []auth.APIKey{
		{ID: "key_a", Name: "a", Scope: auth.ScopeService, CreatedAt: t0, Hash: "aa"},
		{ID: "key_b", Name: "b", Scope: auth.ScopeRead, CreatedAt: t0.Add(time.Second), Hash: "bb"},
	}
	for _, k := range keys {
		if err := st.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.LookupAPIKey(ctx, "aa")
	if err != nil || got.ID != "key_a" || got.Scope != auth.ScopeService || !got.CreatedAt.Equal(t0) || got.RevokedAt != nil {
		t.Fatalf("lookup %+v, %v", got, err)
	}
	if _, err := st.LookupAPIKey(ctx, "zz"); credits.ErrorCode(err) != credits.CodeNotFound {
		t.Fatalf("lookup of an unknown hash: %v", err)
	}

	at := t0.Add(time.Hour)
	k, err := st.RevokeAPIKey(ctx, "key_a", at)
	if err != nil || k.ID != "key_a" || k.Hash != "aa" || k.RevokedAt == nil || !k.RevokedAt.Equal(at) || k.RevokedAt.Location() != time.UTC {
		t.Fatalf("revoke %+v, %v", k, err)
	}
	k, err = st.RevokeAPIKey(ctx, "key_a", at.Add(time.Hour))
	if err != nil || k.RevokedAt == nil || !k.RevokedAt.Equal(at) {
		t.Fatalf("revoke again %+v, %v: want revoked_at kept at %s", k, err, at)
	}
	if _, err := st.RevokeAPIKey(ctx, "key_nope", at); credits.ErrorCode(err) != credits.CodeNotFound {
		t.Fatalf("revoke unknown: %v", err)
	}
	got, err = st.LookupAPIKey(ctx, "aa")
	if err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
		t.Fatalf("lookup after revocation %+v, %v", got, err)
	}

	list, err := st.ListAPIKeys(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "key_a" || list[1].ID != "key_b" {
		t.Fatalf("list %+v, %v", list, err)
	}
	if list[0].RevokedAt == nil || !list[0].RevokedAt.Equal(at) || list[1].RevokedAt != nil {
		t.Fatalf("list %+v", list)
	}
}
