package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/internal/pgtest"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/postgres"
	"github.com/credits-dev/credits/storetest"
)

func open(t *testing.T) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store { return open(t) })
}

// Two engines (as two instances would) on one database, each with opts.
func twoEngines(t *testing.T, opts ledger.Options) (*ledger.Engine, *ledger.Engine, *postgres.Store) {
	t.Helper()
	url := pgtest.URL(t)
	var engines [2]*ledger.Engine
	var first *postgres.Store
	for i := range engines {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if first == nil {
			first = st
		}
		opts.Writers, opts.SweepInterval = 4, -1
		e, err := ledger.New(st, credits.DefaultCatalog(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		engines[i] = e
	}
	return engines[0], engines[1], first
}

func TestTwoInstancesNeverOverspend(t *testing.T) {
	a, b, st := twoEngines(t, ledger.Options{MaxBatch: 256})
	ctx := context.Background()
	if _, _, err := a.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w", Plan: "starter"}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		e := a
		if i%2 == 1 {
			e = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: fmt.Sprint("k", i), Operation: "image_1k"})
			switch credits.ErrorCode(err) {
			case "":
				ok.Add(1)
			case credits.CodeInsufficientCredits:
				refused.Add(1)
			default:
				t.Errorf("hold: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 33 || refused.Load() != n-33 {
		t.Fatalf("%d holds succeeded, %d refused; want 33 and %d", ok.Load(), refused.Load(), n-33)
	}
	bal, _ := b.Balance(ctx, "w")
	if bal.Available != 10 || bal.Held != 990 || bal.Available+bal.Held+bal.Used != bal.Granted {
		t.Fatalf("balance %+v", bal)
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}

func TestTwoInstancesChargeOnce(t *testing.T) {
	a, b, st := twoEngines(t, ledger.Options{MaxBatch: 256})
	ctx := context.Background()
	if _, _, err := a.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w", Plan: "starter"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 40)
	start := make(chan struct{})
	for i := range ids {
		e := a
		if i%2 == 1 {
			e = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "same", Operation: "section_generation", Capture: true})
			if err != nil {
				t.Errorf("hold: %v", err)
				return
			}
			ids[i] = r.Charge.ID
		}()
	}
	close(start)
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("two charges for one key: %s and %s", ids[0], id)
		}
	}
	bal, _ := a.Balance(ctx, "w")
	if bal.Used != 10 || bal.Available != 990 {
		t.Fatalf("balance %+v", bal)
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// Creating one workspace on both instances at once: one wins, the other
// gets conflict; capturing and releasing one hold on both: one answer wins.
func TestTwoInstancesRace(t *testing.T) {
	a, b, st := twoEngines(t, ledger.Options{MaxBatch: 1})
	ctx := context.Background()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, e := range []*ledger.Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w"})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || (credits.ErrorCode(errs[0]) != credits.CodeConflict && credits.ErrorCode(errs[1]) != credits.CodeConflict) {
		t.Fatalf("creates: %v, %v", errs[0], errs[1])
	}
	for round := range 20 {
		h, err := a.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: fmt.Sprint("h", round), Operation: "content_rewrite"})
		if err != nil {
			t.Fatal(err)
		}
		var capErr, relErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, capErr = a.Capture(ctx, h.Charge.ID) }()
		go func() { defer wg.Done(); _, relErr = b.Release(ctx, h.Charge.ID) }()
		wg.Wait()
		if (capErr == nil) == (relErr == nil) {
			t.Fatalf("round %d: capture %v, release %v: exactly one must win", round, capErr, relErr)
		}
		for _, err := range []error{capErr, relErr} {
			if err != nil && credits.ErrorCode(err) != credits.CodeChargeNotHeld {
				t.Fatalf("loser: %v", err)
			}
		}
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// A change committed by one instance reaches the balance streams of the
// other, through LISTEN/NOTIFY.
func TestStreamsAcrossInstances(t *testing.T) {
	a, b, _ := twoEngines(t, ledger.Options{MaxBatch: 256})
	ctx := context.Background()
	if _, _, err := a.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	updates, cancel := b.Subscribe("w")
	defer cancel()
	time.Sleep(200 * time.Millisecond) // let both listeners connect
	if _, err := a.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k"}); err != nil {
		t.Fatal(err)
	}
	// The workspace's creation may be announced too; the hold must follow.
	timeout := time.After(10 * time.Second)
	for {
		select {
		case bal := <-updates:
			if bal.Available == 220 && bal.Held == 30 {
				return
			}
			if bal.Available != 250 {
				t.Fatalf("streamed %+v", bal)
			}
		case <-timeout:
			t.Fatal("the hold's balance never reached the other instance's stream")
		}
	}
}

// Resets and expiries that fall due are applied once, however many instances
// notice them at the same moment.
func TestTwoInstancesResetAndSweepOnce(t *testing.T) {
	clk := storetest.NewClock(time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC))
	a, b, st := twoEngines(t, ledger.Options{NowFunc: clk.Now})
	engines := []*ledger.Engine{a, b}
	ctx := context.Background()
	for i := range 10 {
		id := fmt.Sprint("w", i)
		if _, _, err := engines[0].CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if _, err := engines[1].Hold(ctx, ledger.HoldParams{WorkspaceID: id, IdempotencyKey: fmt.Sprint(j), Operation: "section_generation", HoldSeconds: 60}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Three missed resets (Feb 28, Mar 31, Apr 30) and every hold expired.
	clk.Set(time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC))
	var wg sync.WaitGroup
	for _, e := range engines {
		for range 3 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if _, err := e.Sweep(ctx); err != nil {
					t.Errorf("sweep: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				for i := range 10 {
					if _, err := e.Balance(ctx, fmt.Sprint("w", i)); err != nil {
						t.Errorf("balance: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	for i := range 10 {
		id := fmt.Sprint("w", i)
		if err := ledger.Check(ctx, st); err != nil {
			t.Fatal(err)
		}
		es, err := st.Entries(ctx, id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, e := range es {
			count[e.Type]++
		}
		// 1 grant at creation + 3 resets; 3 holds, each released once.
		if count["grant"] != 4 || count["hold"] != 3 || count["release"] != 3 || count["expire"] != 3 || len(es) != 13 {
			t.Fatalf("%s: entries by type %v (%d)", id, count, len(es))
		}
	}
}
