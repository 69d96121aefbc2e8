package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// A workspace that leaves the overlay gives its pendingWS to the next one:
// nothing of the first may show through the second, and a pendingWS whose
// maps grew large is not kept.
func TestOverlayReusesEmptiedWorkspaces(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	rows := func(ws string, charges int) *ledger.Changes {
		c := &ledger.Changes{
			Cycles:      []ledger.CycleRow{{WorkspaceID: ws, Cycle: credits.Cycle{N: 1, Granted: 250, Available: 250}}},
			Entries:     []credits.Entry{{Seq: 1, WorkspaceID: ws, Type: credits.EntryGrant, Amount: 250}},
			Idempotency: []ledger.IdemRecord{{WorkspaceID: ws, Key: "k-" + ws, CreatedAt: t0}},
		}
		for i := range charges {
			c.NewCharges = append(c.NewCharges, credits.Charge{ID: fmt.Sprintf("ch_%s_%d", ws, i), WorkspaceID: ws, Status: credits.StatusHeld})
		}
		return c
	}
	o := newOverlay()
	a := &record{Batch: 1, Changes: rows("ws_a", 1)}
	o.add(a.Batch, a.Changes)
	o.drop([]*record{a})
	if len(o.ws) != 0 || len(o.spare) != 1 {
		t.Fatalf("after the drop: %d workspaces, %d spare; want 0 and 1", len(o.ws), len(o.spare))
	}

	// ws_b takes ws_a's emptied maps; it writes only an entry.
	b := &record{Batch: 2, Changes: &ledger.Changes{Entries: []credits.Entry{{Seq: 2, WorkspaceID: "ws_b", Type: credits.EntryAdjust, Amount: 5}}}}
	o.add(b.Batch, b.Changes)
	if len(o.spare) != 0 {
		t.Fatalf("ws_b did not reuse the spare: %d left", len(o.spare))
	}
	if v := o.workspace("ws_b"); v.row != nil || len(v.cycles) != 0 {
		t.Errorf("ws_b shows ws_a's rows: %+v", v)
	}
	if got := o.charges("ws_b"); len(got) != 0 {
		t.Errorf("ws_b shows ws_a's charges: %v", got)
	}
	if _, ok := o.idem(ledger.IdemKey{WorkspaceID: "ws_b", Key: "k-ws_a"}); ok {
		t.Error("ws_b shows ws_a's idempotency key")
	}
	if _, ok := o.charge("ch_ws_a_0"); ok {
		t.Error("ws_a's charge is still in the overlay")
	}
	if got := o.entries("ws_b", 1<<62, 10); len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("ws_b's entries = %+v, want its one entry", got)
	}
	o.drop([]*record{b})

	// A workspace with more charges than one map group holds (here the
	// one that took ws_b's spare) is let go.
	c := &record{Batch: 3, Changes: rows("ws_c", smallMap+1)}
	o.add(c.Batch, c.Changes)
	o.drop([]*record{c})
	if len(o.ws) != 0 || len(o.spare) != 0 {
		t.Fatalf("after a big workspace left: %d workspaces, %d spare; want none", len(o.ws), len(o.spare))
	}
}
