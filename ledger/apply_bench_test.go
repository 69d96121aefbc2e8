package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// The rules alone, without a store: what one command costs the writer
// before any I/O.

func BenchmarkApplyHoldCapture(b *testing.B) {
	cat := credits.DefaultCatalog()
	cat.Plans = append(cat.Plans, credits.Plan{ID: "big", Name: "Big", MonthlyCredits: credits.MaxCost, Currency: "usd"})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 256
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := newState(now, &cat, newID)
		a := &Account{Workspace: credits.Workspace{ID: "w", Plan: "big", CycleAnchor: now}, Cycle: newCycle(now, 0)}
		a.Cycle.Granted, a.Cycle.Available = credits.MaxCost, credits.MaxCost
		s.accounts["w"] = a
		for j := range batch / 2 {
			r := (&holdCmd{p: HoldParams{WorkspaceID: "w", IdempotencyKey: fmt.Sprint(i, "-", j), Operation: "content_rewrite", Quantity: 1, HoldSeconds: 600}, cost: 1, fingerprint: "f"}).apply(s)
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			if r := (&finishCmd{chargeID: r.Charge.Charge.ID, status: credits.StatusCaptured}).apply(s); r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		if ch := s.changes(); len(ch.Entries) != batch {
			b.Fatalf("%d entries", len(ch.Entries))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch/2), "ns/pair")
}

func BenchmarkNewID(b *testing.B) {
	for b.Loop() {
		_ = newID("ch_")
	}
}
