package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/internal/pgtest"
	"github.com/credits-dev/credits/ledger"
)

func TestHomesPlaceAndBound(t *testing.T) {
	var h homes
	h.put([]string{"ch_1", "w1", "ch_2", "w2"})
	known, unknown := h.place([]string{"ch_2", "ch_x", "ch_1"})
	if !slices.Equal(known, []string{"w2", "w1"}) || !slices.Equal(unknown, []string{"ch_x"}) {
		t.Fatalf("place: known %v, unknown %v", known, unknown)
	}
	for i := range maxHomes + 10 {
		h.put([]string{fmt.Sprint("c", i), "w"})
	}
	if n := h.len(); n > maxHomes || n < maxHomes-maxHomes/8-1 {
		t.Fatalf("%d homes remembered, bound %d", n, maxHomes)
	}
	if _, unknown := h.place([]string{fmt.Sprint("c", maxHomes+9)}); len(unknown) != 0 {
		t.Fatal("the newest home was forgotten")
	}
}

// A store learns a charge's home from the hold it commits, or, for a
// charge another instance made, from reading it; a refused hold teaches it
// nothing.
func TestHomesLearntFromCommitsAndReads(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	var stores [2]*Store
	var engines [2]*ledger.Engine
	for i := range stores {
		st, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		stores[i], engines[i] = st, e
	}
	a, b := engines[0], engines[1]
	if _, _, err := a.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w", Plan: "starter"}); err != nil {
		t.Fatal(err)
	}
	h, err := a.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k1", Operation: "content_rewrite"})
	if err != nil {
		t.Fatal(err)
	}
	id := h.Charge.ID
	if known, _ := stores[0].homes.place([]string{id}); !slices.Equal(known, []string{"w"}) {
		t.Fatalf("the instance that held %s knows homes %v", id, known)
	}
	if known, _ := stores[1].homes.place([]string{id}); len(known) != 0 {
		t.Fatalf("the other instance knows homes %v before reading the charge", known)
	}
	// Captured through the other instance: its batch finds the charge's
	// workspace by looking the charge up, and remembers it.
	if _, err := b.Capture(ctx, id); err != nil {
		t.Fatal(err)
	}
	if known, _ := stores[1].homes.place([]string{id}); !slices.Equal(known, []string{"w"}) {
		t.Fatalf("after capturing %s the other instance knows homes %v", id, known)
	}
	// Released through the first, whose batch names the workspace it
	// remembers: the charge is found there, and is no longer held.
	if _, err := a.Release(ctx, id); credits.ErrorCode(err) != credits.CodeChargeNotHeld {
		t.Fatalf("release of a captured charge: %v", err)
	}
	// A hold refused (no such workspace) commits no charge: nothing learnt.
	before := stores[0].homes.len()
	if _, err := a.Hold(ctx, ledger.HoldParams{WorkspaceID: "nope", IdempotencyKey: "k2", Operation: "content_rewrite"}); err == nil {
		t.Fatal("hold on a missing workspace succeeded")
	}
	if after := stores[0].homes.len(); after != before {
		t.Fatalf("homes %d -> %d after a refused hold", before, after)
	}
	bal, err := a.Balance(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if bal.Used != 1 || bal.Held != 0 || bal.Available != 999 {
		t.Fatalf("balance %+v", bal)
	}
	if err := ledger.Check(ctx, stores[0]); err != nil {
		t.Fatal(err)
	}
}

// A transaction whose commit fails leaves no home behind: the charge it
// wrote does not exist.
func TestHomesNotLearntFromAFailedCommit(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	// A quantity of 0 fails the table's check, and so the commit.
	ch := credits.Charge{ID: "ch_lost", WorkspaceID: "w", Operation: "content_rewrite", Quantity: 0, Cost: 1,
		Status: credits.StatusHeld, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := tx.Write(ctx, &ledger.Changes{NewCharges: []credits.Charge{ch}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("a charge of quantity 0 committed")
	}
	if n := st.homes.len(); n != 0 {
		t.Fatalf("%d homes after a failed commit", n)
	}
}

// len is how many homes h remembers.
func (h *homes) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}
