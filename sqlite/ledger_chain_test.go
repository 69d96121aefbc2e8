package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// A workspace's ledger is a chain through the entries table (migration 6):
// pages read from the overlay, from the tables, and across the two give
// every entry of the workspace once, newest first, and none of another
// workspace's, whose entries are interleaved with its own.
func TestLedgerChainPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openAt(t, filepath.Join(t.TempDir(), "credits.db"))
	e := newEngine(t, st) // workspace "w"
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "v", Name: "v"}); err != nil {
		t.Fatal(err)
	}
	hold := func(ws string, i int) {
		t.Helper()
		r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: ws, IdempotencyKey: fmt.Sprint("k", i), Operation: "content_rewrite"})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := e.Capture(ctx, r.Charge.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func(ws string, limit int) []int64 {
		t.Helper()
		var seqs []int64
		cursor := ""
		for {
			p, err := e.Ledger(ctx, ws, limit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range p.Entries {
				if en.WorkspaceID != ws {
					t.Fatalf("%s's ledger has %s of %s", ws, en.ID, en.WorkspaceID)
				}
				seqs = append(seqs, en.Seq)
			}
			if p.NextCursor == nil {
				return seqs
			}
			cursor = *p.NextCursor
		}
	}
	check := func(stage string, want map[string]int) {
		t.Helper()
		for ws, n := range want {
			whole := all(ws, credits.MaxLedgerPage)
			if len(whole) != n {
				t.Fatalf("%s: %s has %d entries, want %d", stage, ws, len(whole), n)
			}
			if !slices.IsSortedFunc(whole, func(a, b int64) int { return int(b - a) }) {
				t.Fatalf("%s: %s's entries are not newest first: %v", stage, ws, whole)
			}
			for _, limit := range []int{1, 4, 7} {
				if got := all(ws, limit); !slices.Equal(got, whole) {
					t.Fatalf("%s: %s in pages of %d:\n%v\nwant\n%v", stage, ws, limit, got, whole)
				}
			}
		}
	}
	// Each workspace: its grant, a hold per i and a capture every third.
	entries := func(holds int) int { return 1 + holds + (holds+2)/3 }
	for i := range 40 {
		hold("w", i)
		hold("v", i)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("in the tables", map[string]int{"w": entries(40), "v": entries(40)})
	for i := 40; i < 60; i++ { // within the materializer's wait: in the overlay
		hold("w", i)
		hold("v", i)
	}
	check("overlay and tables", map[string]int{"w": entries(60), "v": entries(60)})
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("flushed", map[string]int{"w": entries(60), "v": entries(60)})

	// A cursor is a workspace's own: one that names another's entry is
	// refused, not answered with a page of the wrong chain.
	p, err := e.Ledger(ctx, "v", 3, "")
	if err != nil {
		t.Fatal(err)
	}
	deep, err := e.Ledger(ctx, "v", 10, *p.NextCursor)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Ledger(ctx, "w", 3, *deep.NextCursor)
	var ce *credits.Error
	if !errors.As(err, &ce) || ce.Code != credits.CodeInvalidRequest || ce.Field != "cursor" {
		t.Fatalf("another workspace's cursor: %v, want invalid_request on cursor", err)
	}
}

// Verify's streams come from one sorted cursor per table, read workspace
// by workspace in order; a workspace asked for out of order is an error,
// not a silently empty stream.
func TestSnapshotStreamsInWorkspaceOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openAt(t, filepath.Join(t.TempDir(), "credits.db"))
	e := newEngine(t, st) // workspace "w", with its grant
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "v", Name: "v"}); err != nil {
		t.Fatal(err)
	}
	err := st.ReadSnapshot(ctx, func(snap ledger.Snapshot) error {
		for _, ws := range []string{"v", "w"} {
			s, err := snap.Entries(ctx, ws)
			if err != nil {
				return err
			}
			page, err := s.Next(ctx)
			if err != nil || len(page) != 1 || page[0].WorkspaceID != ws || page[0].Type != "grant" {
				return fmt.Errorf("%s's ledger: %+v %v", ws, page, err)
			}
		}
		if _, err := snap.Entries(ctx, "v"); err == nil {
			return errors.New("a workspace read again after a later one was given a stream")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
