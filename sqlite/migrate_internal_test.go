package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/credits-dev/credits/ledger"
)

// A database made by schema 5 (an index of each workspace's entries, a
// unique index of idempotency keys) opens with its ledgers chained and its
// keys hashed: every page and every stored answer is found as before.
func TestMigrateToLedgerChainAndKeyHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credits.db")
	old, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`)
	for v, m := range migrations[:5] {
		exec(m.sql)
		exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, v+1)
	}
	want := map[string][]int64{} // newest first
	for _, ws := range []string{"a", "b", "c"} {
		exec(`INSERT INTO workspaces (id, name, plan, cycle_anchor, created_at, cycle) VALUES (?, ?, 'free', 0, 0, 0)`, ws, ws)
	}
	for seq := int64(1); seq <= 30; seq++ {
		ws := []string{"a", "b", "a", "c", "a"}[seq%5] // interleaved, a busier
		exec(`INSERT INTO entries (seq, workspace_id, cycle, at, type, amount, available_after) VALUES (?, ?, 0, 0, 'adjust', 1, ?)`, seq, ws, seq)
		want[ws] = append([]int64{seq}, want[ws]...)
	}
	for i := range 20 {
		ws := []string{"a", "b"}[i%2]
		exec(`INSERT INTO idempotency (workspace_id, key, fingerprint, created_at, result) VALUES (?, ?, 'f', 0, '{}')`, ws, fmt.Sprint("key-", i))
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for ws, seqs := range want {
		var got []int64
		var before int64
		for {
			page, err := s.Entries(ctx, ws, before, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				got = append(got, e.Seq)
			}
			if len(page) < 4 {
				break
			}
			before = page[len(page)-1].Seq
		}
		if fmt.Sprint(got) != fmt.Sprint(seqs) {
			t.Errorf("%s's ledger after the migration: %v, want %v", ws, got, seqs)
		}
	}
	var unhashed int
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM idempotency WHERE hash = 0`).Scan(&unhashed); err != nil || unhashed != 0 {
		t.Fatalf("%d keys without their hash (%v)", unhashed, err)
	}
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	keys := []ledger.IdemKey{{WorkspaceID: "a", Key: "key-4"}, {WorkspaceID: "b", Key: "key-7"}, {WorkspaceID: "a", Key: "key-7"}}
	found, err := tx.Idempotency(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := found[keys[0]]; !ok {
		t.Error("a's key-4 is not found after the migration")
	}
	if _, ok := found[keys[1]]; !ok {
		t.Error("b's key-7 is not found after the migration")
	}
	if _, ok := found[keys[2]]; ok {
		t.Error("a's key-7 is found, but it is b's")
	}
}
