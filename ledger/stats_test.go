package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
)

// Stats counts each batch the writer ran and the time it spent on it, all
// of it by the time its caller has the answer. One caller at a time makes
// one batch per command, and the writer is busy only while a caller waits
// for it: never longer than the calls took.
func TestStatsCountTheWritersWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t)
	t.Cleanup(func() { st.Close() })
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w", Plan: "starter"}); err != nil {
		t.Fatal(err)
	}
	before := e.Stats()
	start := time.Now()
	const holds = 20
	for i := range holds {
		if _, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: fmt.Sprint("k", i), Operation: "content_rewrite"}); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	after := e.Stats()
	if got := after.Batches - before.Batches; got != holds {
		t.Errorf("%d batches for %d holds made one at a time", got, holds)
	}
	if got := after.Commands - before.Commands; got != holds {
		t.Errorf("%d commands, want %d", got, holds)
	}
	if after.Writers != 1 {
		t.Errorf("%d writers on SQLite, want 1", after.Writers)
	}
	if busy := after.Busy - before.Busy; busy <= 0 || busy > elapsed {
		t.Errorf("the writer busy %v during calls that took %v", busy, elapsed)
	}
}

// openSQLite opens a fresh SQLite store; closing it is the caller's (a
// test whose writer may be stuck must not wait for it in a cleanup).
func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "credits.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
