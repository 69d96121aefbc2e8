package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// Callers that give up while their command is queued or running leave its
// answer to come later; answer channels are reused, and no such late answer
// may reach another caller. Half the callers give up within microseconds,
// the others check that every answer they get is their own charge (a
// channel reused too early would also stop the writer: see the timeout).
func TestLateAnswersReachNoOtherCaller(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	cat := credits.DefaultCatalog()
	cat.Plans = append(cat.Plans, credits.Plan{ID: "big", Name: "Big", MonthlyCredits: credits.MaxCost, Currency: "usd"})
	e, err := ledger.New(st, cat, ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Closed at the end, not deferred: with the writer stuck (the failure
	// looked for), Close would wait for it forever.
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w", Plan: "big"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var gaveUp, checked atomic.Int64
	for g := range 32 {
		wg.Go(func() {
			for i := range 150 {
				quantity := int64(g*1000 + i + 1) // this caller's own, in every answer it gets
				key := fmt.Sprint("k-", g, "-", i)
				cctx, cancel := context.WithCancel(ctx)
				if g%2 == 1 {
					cancel()
					cctx, cancel = context.WithTimeout(ctx, time.Duration(i%50)*time.Microsecond)
				}
				r, err := e.Hold(cctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: key, Operation: "content_rewrite", Quantity: quantity})
				cancel()
				if err != nil {
					if g%2 == 1 && errors.Is(err, context.DeadlineExceeded) {
						gaveUp.Add(1)
						continue
					}
					t.Errorf("hold %s: %v", key, err)
					return
				}
				if r.Charge == nil || r.Charge.Quantity != quantity {
					t.Errorf("hold %s (quantity %d) got another caller's answer: %+v", key, quantity, r.Charge)
					return
				}
				checked.Add(1)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		// A late answer in a reused channel fills it, and the writer then
		// blocks forever on the next answer into it.
		t.Fatal("callers still waiting after a minute: the writer is stuck")
	}
	e.Close()
	st.Close()
	n, m := gaveUp.Load(), checked.Load()
	if n == 0 || m < 16*150 {
		t.Fatalf("%d callers gave up and %d answers were checked: the test did not exercise late answers", n, m)
	}
	t.Logf("%d callers gave up, %d answers checked", n, m)
}
