package ledger

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// The rules without a database: state in, commands applied, changes out.

// changes is what the writer collects after a batch (runBatch).
func (s *state) changes() *Changes { return s.changesOf(sortedKeys(s.dirtyAcc)) }

var t0 = time.Date(2025, 3, 31, 8, 0, 0, 0, time.UTC)

func testState(now time.Time, plan string, available, held, used int64) (*state, *Account) {
	cat := credits.DefaultCatalog()
	n := 0
	seq := 0
	s := newState(now, &cat, func(p string) string { seq++; return fmt.Sprintf("%s%d", p, seq) })
	a := &Account{
		Workspace: credits.Workspace{ID: "w", Name: "w", Plan: plan, CycleAnchor: t0, CreatedAt: t0},
		Cycle:     newCycle(t0, n),
	}
	a.Cycle.Granted, a.Cycle.Available, a.Cycle.Held, a.Cycle.Used = available+held+used, available, held, used
	s.accounts["w"] = a
	return s, a
}

func entryList(es []credits.Entry) string {
	out := ""
	for _, e := range es {
		out += fmt.Sprintf("%s%+d=%d ", e.Type, e.Amount, e.AvailableAfter)
	}
	return out
}

func TestApplyHold(t *testing.T) {
	tests := []struct {
		name                  string
		available, held, used int64
		op                    string
		qty                   int64
		capture               bool
		wantErr               string
		wantAvail, wantHeld   int64
		wantUsed              int64
		wantEntries           string
	}{
		{"hold", 250, 0, 0, "image_1k", 1, false, "", 220, 30, 0, "hold-30=220 "},
		{"hold exactly all", 30, 0, 220, "image_1k", 1, false, "", 0, 30, 220, "hold-30=0 "},
		{"capture at once", 250, 0, 0, "content_rewrite", 5, true, "", 245, 0, 5, "hold-5=245 capture+0=245 "},
		{"one short", 29, 0, 221, "image_1k", 1, false, credits.CodeInsufficientCredits, 29, 0, 221, ""},
		{"held credits are not available", 40, 210, 0, "image_2k", 1, false, credits.CodeInsufficientCredits, 40, 210, 0, ""},
		{"free op on empty balance", 0, 0, 250, "avatar_selection", 1, true, "", 0, 0, 250, "hold+0=0 capture+0=0 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, a := testState(t0.Add(time.Hour), "free", tt.available, tt.held, tt.used)
			op, _ := s.cat.Operation(tt.op)
			cmd := &holdCmd{p: HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: tt.op, Quantity: tt.qty, Capture: tt.capture, HoldSeconds: 600}, cost: op.Cost * tt.qty, fingerprint: "f"}
			r := cmd.apply(s)
			if got := credits.ErrorCode(r.Err); got != tt.wantErr {
				t.Fatalf("error %v, want %q", r.Err, tt.wantErr)
			}
			if a.Cycle.Available != tt.wantAvail || a.Cycle.Held != tt.wantHeld || a.Cycle.Used != tt.wantUsed || !a.Cycle.Balanced() {
				t.Fatalf("cycle %+v", a.Cycle)
			}
			if got := entryList(s.entries); got != tt.wantEntries {
				t.Fatalf("entries %q, want %q", got, tt.wantEntries)
			}
			ch := s.changes()
			if tt.wantErr != "" {
				// A refusal writes only its idempotency record.
				if len(ch.Accounts)+len(ch.Cycles)+len(ch.Charges)+len(ch.Entries) != 0 || len(ch.Idempotency) != 1 {
					t.Fatalf("a refusal changed %+v", ch)
				}
				if in := credits.AsError(r.Err).Insufficient; in.Balance != tt.available || in.Required != op.Cost*tt.qty {
					t.Fatalf("insufficient %+v", in)
				}
			}
		})
	}
}

func TestApplyReplayAndReuse(t *testing.T) {
	s, a := testState(t0, "free", 250, 0, 0)
	cmd := &holdCmd{p: HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Quantity: 1, HoldSeconds: 600}, cost: 30, fingerprint: "f1"}
	first := cmd.apply(s)
	again := cmd.apply(s)
	if first.Charge.Charge.ID != again.Charge.Charge.ID || a.Cycle.Held != 30 {
		t.Fatalf("replay made another charge: %v %v held %d", first.Charge.Charge.ID, again.Charge.Charge.ID, a.Cycle.Held)
	}
	other := *cmd
	other.fingerprint = "f2"
	if r := other.apply(s); credits.ErrorCode(r.Err) != credits.CodeIdempotencyKeyReused {
		t.Fatalf("reuse: %v", r.Err)
	}
}

func TestApplyResets(t *testing.T) {
	// Anchor Mar 31: resets Apr 30, May 31, Jun 30. A pending downgrade
	// takes effect at the first.
	s, a := testState(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC), "starter", 400, 0, 600)
	free := "free"
	a.Workspace.PendingPlan = &free
	(&touchCmd{workspaceID: "w"}).apply(s)
	want := "expire-400=0 grant+250=250 expire-250=0 grant+250=250 expire-250=0 grant+250=250 "
	if got := entryList(s.entries); got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
	wantAt := []time.Time{
		time.Date(2025, 4, 30, 8, 0, 0, 0, time.UTC), time.Date(2025, 4, 30, 8, 0, 0, 0, time.UTC),
		time.Date(2025, 5, 31, 8, 0, 0, 0, time.UTC), time.Date(2025, 5, 31, 8, 0, 0, 0, time.UTC),
		time.Date(2025, 6, 30, 8, 0, 0, 0, time.UTC), time.Date(2025, 6, 30, 8, 0, 0, 0, time.UTC),
	}
	for i, e := range s.entries {
		if !e.At.Equal(wantAt[i]) {
			t.Fatalf("entry %d at %v, want %v", i, e.At, wantAt[i])
		}
	}
	if a.Workspace.Plan != "free" || a.Workspace.PendingPlan != nil || a.Cycle.N != 3 || a.Cycle.Available != 250 {
		t.Fatalf("account %+v", a)
	}
	ch := s.changes()
	if len(ch.Cycles) != 4 { // cycles 0, 1, 2 closed and 3 current
		t.Fatalf("%d cycle rows written", len(ch.Cycles))
	}
	for _, c := range ch.Cycles {
		if !c.Cycle.Balanced() {
			t.Fatalf("cycle %+v", c.Cycle)
		}
	}
}

// Due hold expiries and resets interleave in time order.
func TestApplyExpiryBeforeReset(t *testing.T) {
	s, a := testState(t0.AddDate(0, 1, 0).Add(time.Hour), "free", 190, 60, 0)
	early := &credits.Charge{ID: "ch_early", WorkspaceID: "w", Operation: "section_generation", Cost: 10, Status: "held", ExpiresAt: t0.Add(24 * time.Hour)}
	late := &credits.Charge{ID: "ch_late", WorkspaceID: "w", Operation: "image_1k", Cost: 50, Status: "held", ExpiresAt: t0.AddDate(0, 1, 0).Add(30 * time.Minute)}
	s.charges[early.ID], s.charges[late.ID] = early, late
	s.due["w"] = []*credits.Charge{early, late}
	a.NextExpiry = early.ExpiresAt
	(&touchCmd{workspaceID: "w"}).apply(s)
	want := "release+10=200 expire-200=0 grant+250=250 expire+0=250 "
	if got := entryList(s.entries); got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
	old := s.cycles[CycleKey{"w", 0}]
	if old.Held != 0 || old.Expired != 250 || !old.Balanced() || a.NextExpiry != (time.Time{}) {
		t.Fatalf("old cycle %+v, next expiry %v", old, a.NextExpiry)
	}
}

func TestApplyPlanChange(t *testing.T) {
	tests := []struct {
		from, to, pending string
		plan              string
		available         int64
		entries           string
	}{
		{"free", "starter", "", "starter", 795, "upgrade+750=795 "},
		{"free", "pro", "", "pro", 4795, "upgrade+4750=4795 "},
		{"pro", "free", "free", "pro", 45, ""},
		{"free", "free", "", "free", 45, ""},
	}
	for _, tt := range tests {
		t.Run(tt.from+"->"+tt.to, func(t *testing.T) {
			s, a := testState(t0, tt.from, 45, 0, 205)
			r := (&changePlanCmd{workspaceID: "w", plan: tt.to}).apply(s)
			if r.Err != nil || a.Workspace.Plan != tt.plan || a.Cycle.Available != tt.available || !a.Cycle.Balanced() {
				t.Fatalf("%+v %v", a, r.Err)
			}
			if (tt.pending == "") != (a.Workspace.PendingPlan == nil) {
				t.Fatalf("pending %v", a.Workspace.PendingPlan)
			}
			if got := entryList(s.entries); got != tt.entries {
				t.Fatalf("entries %q, want %q", got, tt.entries)
			}
		})
	}
}

// Each writer goroutine reuses one state for every batch: clearFor must
// leave nothing of the last batch in any of its maps, including maps added
// later.
func TestStateClearFor(t *testing.T) {
	s, _ := testState(t0, "free", 250, 0, 0)
	cmd := &holdCmd{p: HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Quantity: 1, HoldSeconds: 600}, cost: 1, fingerprint: "f"}
	if res := cmd.apply(s); res.Err != nil {
		t.Fatal(res.Err)
	}
	filled := 0
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Map && f.Len() > 0 {
			filled++
		}
	}
	if filled < 5 || len(s.entries) == 0 {
		t.Fatalf("the hold filled %d maps and %d entries: the test no longer exercises clearFor", filled, len(s.entries))
	}
	later := t0.Add(time.Hour)
	s.clearFor(later)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Map && f.Len() > 0 {
			t.Errorf("after clearFor, %s still holds %d entries", v.Type().Field(i).Name, f.Len())
		}
	}
	if s.entries != nil || !s.now.Equal(later) {
		t.Errorf("after clearFor: entries %v, now %v", s.entries, s.now)
	}
}
