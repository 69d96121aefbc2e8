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

	// A workspace with more charges than the slice holds (here the one
	// that took ws_b's spare) is kept too, its map let go.
	c := &record{Batch: 3, Changes: rows("ws_c", rowsInline+1)}
	o.add(c.Batch, c.Changes)
	if p := o.ws["ws_c"]; p == nil || p.charges.m == nil {
		t.Fatalf("ws_c's %d charges are not in a map", rowsInline+1)
	}
	o.drop([]*record{c})
	if len(o.ws) != 0 || len(o.spare) != 1 {
		t.Fatalf("after a big workspace left: %d workspaces, %d spare; want 0 and 1", len(o.ws), len(o.spare))
	}
	if sp := o.spare[0]; sp.charges.m != nil || cap(sp.charges.list) > rowsInline || sp.charges.len() != 0 {
		t.Errorf("the spare kept its map or more than %d rows' room: map %v, room %d, rows %d", rowsInline, sp.charges.m != nil, cap(sp.charges.list), sp.charges.len())
	}
}

// rows answers as a map does, below, at and past the slice's size, and
// after a reset.
func TestRowsLikeAMap(t *testing.T) {
	t.Parallel()
	var r rows[int, string]
	want := map[int]string{}
	check := func(step string) {
		t.Helper()
		if r.len() != len(want) {
			t.Fatalf("%s: len %d, want %d", step, r.len(), len(want))
		}
		for k, v := range want {
			if got, ok := r.get(k); !ok || got != v {
				t.Fatalf("%s: get(%d) = %q %v, want %q", step, k, got, ok, v)
			}
		}
		seen := 0
		for k, v := range r.all() {
			if want[k] != v {
				t.Fatalf("%s: all() gave %d=%q, want %q", step, k, v, want[k])
			}
			seen++
		}
		if seen != len(want) {
			t.Fatalf("%s: all() gave %d rows, want %d", step, seen, len(want))
		}
		if _, ok := r.get(-1); ok {
			t.Fatalf("%s: found a key never set", step)
		}
	}
	for round := range 2 {
		for i := range 2*rowsInline + 3 {
			r.set(i, fmt.Sprint("v", i))
			want[i] = fmt.Sprint("v", i)
			check(fmt.Sprintf("round %d, set %d", round, i))
			if i%3 == 0 { // overwrite one, delete another
				r.set(i/2, "again")
				want[i/2] = "again"
				r.del(i / 3)
				delete(want, i/3)
				check(fmt.Sprintf("round %d, after %d", round, i))
			}
		}
		if r.m == nil {
			t.Fatalf("%d rows are not in a map", r.len())
		}
		r.reset()
		clear(want)
		check("reset")
		if r.m != nil {
			t.Fatal("reset kept the map")
		}
	}
}
