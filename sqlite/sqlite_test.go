package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
	"github.com/credits-dev/credits/storetest"
)

func open(t testing.TB) ledger.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "credits.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store { return open(t) })
}

// The suite again with idempotency keys indexed every two keys (65,536
// otherwise): lookups meet keys in the tail, in the index, and in between.
func TestConformanceIndexingEveryTwoKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store {
		s := open(t).(*sqlite.Store)
		sqlite.SetTailMax(s, 2)
		return s
	})
}

// The background sweeper expires holds without any read.
func TestSweeperLoop(t *testing.T) {
	t.Parallel()
	st := open(t)
	clk := storetest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{NowFunc: clk.Now, SweepInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", HoldSeconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // sweeps before the expiry change nothing
	if c, _ := st.Charge(ctx, r.Charge.ID); c.Status != "held" {
		t.Fatalf("status %s before expiry", c.Status)
	}
	clk.Advance(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := st.Charge(ctx, r.Charge.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status == "expired" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not expire the hold")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a, err := st.Account(ctx, "w")
	if err != nil || a.Cycle.Available != 250 || a.Cycle.Held != 0 {
		t.Fatalf("account %+v %v", a.Cycle, err)
	}
}
