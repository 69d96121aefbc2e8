package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// --- helpers ---------------------------------------------------------------

func (b *testBundle) workspace(t *testing.T, id, plan string) credits.Workspace {
	t.Helper()
	ws, _, err := b.engine.CreateWorkspace(b.ctx, ledger.CreateWorkspaceParams{ID: id, Name: "Test " + id, Plan: plan})
	if err != nil {
		t.Fatalf("create workspace %s: %v", id, err)
	}
	return ws
}

var keySeq atomic.Int64

func newKey() string { return fmt.Sprintf("key-%d", keySeq.Add(1)) }

func (b *testBundle) hold(t *testing.T, ws, op string) ledger.ChargeResult {
	t.Helper()
	r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: ws, IdempotencyKey: newKey(), Operation: op})
	if err != nil {
		t.Fatalf("hold %s on %s: %v", op, ws, err)
	}
	return r
}

func (b *testBundle) spend(t *testing.T, ws, op string, n int) {
	t.Helper()
	for range n {
		r := b.hold(t, ws, op)
		if _, err := b.engine.Capture(b.ctx, r.Charge.ID); err != nil {
			t.Fatalf("capture: %v", err)
		}
	}
}

func (b *testBundle) balance(t *testing.T, ws string) credits.Balance {
	t.Helper()
	bal, err := b.engine.Balance(b.ctx, ws)
	if err != nil {
		t.Fatalf("balance %s: %v", ws, err)
	}
	return bal
}

// entries returns the whole ledger of ws, oldest first.
func (b *testBundle) entries(t *testing.T, ws string) []credits.Entry {
	t.Helper()
	var all []credits.Entry
	cursor := ""
	for {
		p, err := b.engine.Ledger(b.ctx, ws, 500, cursor)
		if err != nil {
			t.Fatalf("ledger: %v", err)
		}
		all = append(all, p.Entries...)
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// check asserts the invariants of ws and returns its balance.
func (b *testBundle) check(t *testing.T, ws string) credits.Balance {
	t.Helper()
	bal := b.balance(t, ws)
	if bal.Available+bal.Held+bal.Used != bal.Granted {
		t.Errorf("available %d + held %d + used %d != granted %d", bal.Available, bal.Held, bal.Used, bal.Granted)
	}
	if err := ledger.Check(b.ctx, b.store); err != nil {
		t.Errorf("verify: %v", err)
	}
	return bal
}

func wantCode(t *testing.T, err error, code string) *credits.Error {
	t.Helper()
	e := credits.AsError(err)
	if e == nil || e.Code != code {
		t.Fatalf("got error %v, want code %s", err, code)
	}
	return e
}

func wantBalance(t *testing.T, got credits.Balance, granted, available, held, used int64) {
	t.Helper()
	if got.Granted != granted || got.Available != available || got.Held != held || got.Used != used {
		t.Fatalf("balance granted/available/held/used = %d/%d/%d/%d, want %d/%d/%d/%d",
			got.Granted, got.Available, got.Held, got.Used, granted, available, held, used)
	}
}

func types(es []credits.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s%+d", e.Type, e.Amount)
	}
	return out
}

// --- tests -----------------------------------------------------------------

func testCreateWorkspace(t *testing.T, b *testBundle) {
	ws := b.workspace(t, "acme", "")
	if ws.Plan != "free" || ws.PendingPlan != nil || !ws.CycleAnchor.Equal(epoch) || !ws.CreatedAt.Equal(epoch) {
		t.Fatalf("workspace = %+v", ws)
	}
	bal := b.check(t, "acme")
	wantBalance(t, bal, 250, 250, 0, 0)
	if !bal.CycleStart.Equal(epoch) || !bal.CycleEnd.Equal(epoch.AddDate(0, 1, 0)) || bal.MonthlyCredits != 250 {
		t.Fatalf("balance = %+v", bal)
	}
	got, err := b.engine.Workspace(b.ctx, "acme")
	if err != nil || got.ID != "acme" || got.Name != "Test acme" {
		t.Fatalf("workspace read = %+v, %v", got, err)
	}
	_, _, err = b.engine.CreateWorkspace(b.ctx, ledger.CreateWorkspaceParams{ID: "acme", Name: "again"})
	wantCode(t, err, credits.CodeConflict)
	_, err = b.engine.Workspace(b.ctx, "nope")
	wantCode(t, err, credits.CodeNotFound)
	_, err = b.engine.Balance(b.ctx, "nope")
	wantCode(t, err, credits.CodeNotFound)

	// A generated id, a plan and an anchor in the past: the cycle that
	// contains now, granted now.
	anchor := time.Date(2024, 10, 31, 23, 0, 0, 0, time.UTC)
	ws2, bal2, err := b.engine.CreateWorkspace(b.ctx, ledger.CreateWorkspaceParams{Name: "Pro team", Plan: "pro", CycleAnchor: &anchor})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws2.ID) < 4 || ws2.ID[:3] != "ws_" {
		t.Fatalf("generated id %q", ws2.ID)
	}
	wantBalance(t, bal2, 5000, 5000, 0, 0)
	if want := time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC); !bal2.CycleStart.Equal(want) {
		t.Fatalf("cycle_start %v, want %v", bal2.CycleStart, want)
	}
	if want := time.Date(2025, 1, 31, 23, 0, 0, 0, time.UTC); !bal2.CycleEnd.Equal(want) {
		t.Fatalf("cycle_end %v, want %v", bal2.CycleEnd, want)
	}
	es := b.entries(t, ws2.ID)
	if len(es) != 1 || es[0].Type != "grant" || es[0].Amount != 5000 || !es[0].At.Equal(epoch) {
		t.Fatalf("entries %+v", es)
	}
	b.check(t, ws2.ID)
}

// The seed's story of a Free workspace.
func testFreeWorkspaceStory(t *testing.T, b *testBundle) {
	b.workspace(t, "free1", "free")
	b.spend(t, "free1", "section_generation", 10)
	b.spend(t, "free1", "content_rewrite", 15)
	b.spend(t, "free1", "image_1k", 3)
	bal := b.check(t, "free1")
	wantBalance(t, bal, 250, 45, 0, 205)
	before := len(b.entries(t, "free1"))

	_, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "free1", IdempotencyKey: newKey(), Operation: "image_2k"})
	e := wantCode(t, err, credits.CodeInsufficientCredits)
	in := e.Insufficient
	if in == nil || in.Balance != 45 || in.Required != 60 || in.Shortfall != 15 || in.Plan != "free" || in.Upgrade == nil ||
		in.Upgrade.Plan != "starter" || in.Upgrade.MonthlyCredits != 1000 || in.Upgrade.PriceCents != 4900 {
		t.Fatalf("insufficient = %+v (upgrade %+v)", in, in.Upgrade)
	}
	wantBalance(t, b.check(t, "free1"), 250, 45, 0, 205)
	if after := len(b.entries(t, "free1")); after != before {
		t.Fatalf("a refused hold wrote %d ledger entries", after-before)
	}

	ws, bal, err := b.engine.ChangePlan(b.ctx, "free1", "starter")
	if err != nil || ws.Plan != "starter" || ws.PendingPlan != nil {
		t.Fatalf("upgrade: %+v %v", ws, err)
	}
	wantBalance(t, bal, 1000, 795, 0, 205)
	wantBalance(t, b.check(t, "free1"), 1000, 795, 0, 205)

	// The next cycle: 1,000 granted, nothing rolls over.
	b.clock.Set(epoch.AddDate(0, 1, 0))
	bal = b.check(t, "free1")
	wantBalance(t, bal, 1000, 1000, 0, 0)
	es := b.entries(t, "free1")
	last := es[len(es)-2:]
	if last[0].Type != "expire" || last[0].Amount != -795 || last[1].Type != "grant" || last[1].Amount != 1000 ||
		!last[0].At.Equal(epoch.AddDate(0, 1, 0)) || !last[1].At.Equal(epoch.AddDate(0, 1, 0)) {
		t.Fatalf("reset entries %v", types(last))
	}
}

func testCaptureReleaseRules(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	h := b.hold(t, "w", "image_1k")
	if h.Charge.Status != "held" || h.Charge.Cost != 30 || h.Charge.Quantity != 1 || h.Balance.Held != 30 || h.Balance.Available != 220 {
		t.Fatalf("hold = %+v %+v", h.Charge, h.Balance)
	}
	if !h.Charge.ExpiresAt.Equal(epoch.Add(600 * time.Second)) {
		t.Fatalf("expires_at %v", h.Charge.ExpiresAt)
	}
	c1, err := b.engine.Capture(b.ctx, h.Charge.ID)
	if err != nil || c1.Charge.Status != "captured" {
		t.Fatalf("capture: %+v %v", c1.Charge, err)
	}
	c2, err := b.engine.Capture(b.ctx, h.Charge.ID)
	if err != nil || c2.Charge.Status != "captured" || c2.Balance.Used != 30 {
		t.Fatalf("capture again: %+v %v", c2, err)
	}
	_, err = b.engine.Release(b.ctx, h.Charge.ID)
	wantCode(t, err, credits.CodeChargeNotHeld)

	h2 := b.hold(t, "w", "section_generation")
	r1, err := b.engine.Release(b.ctx, h2.Charge.ID)
	if err != nil || r1.Charge.Status != "released" || r1.Balance.Available != 220 {
		t.Fatalf("release: %+v %v", r1, err)
	}
	r2, err := b.engine.Release(b.ctx, h2.Charge.ID)
	if err != nil || r2.Charge.Status != "released" {
		t.Fatalf("release again: %+v %v", r2, err)
	}
	_, err = b.engine.Capture(b.ctx, h2.Charge.ID)
	wantCode(t, err, credits.CodeChargeNotHeld)
	_, err = b.engine.Capture(b.ctx, "ch_nope")
	wantCode(t, err, credits.CodeNotFound)
	_, err = b.engine.Release(b.ctx, "ch_nope")
	wantCode(t, err, credits.CodeNotFound)

	wantBalance(t, b.check(t, "w"), 250, 220, 0, 30)
	got := types(b.entries(t, "w"))
	want := []string{"grant+250", "hold-30", "capture+0", "hold-10", "release+10"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}
}

func testCaptureAtOnce(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "starter")
	member := "m1"
	r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Quantity: 7, Capture: true, MemberID: &member})
	if err != nil || r.Charge.Status != "captured" || r.Charge.Cost != 7 || r.Balance.Used != 7 || r.Balance.Held != 0 {
		t.Fatalf("capture at once: %+v %+v %v", r.Charge, r.Balance, err)
	}
	es := b.entries(t, "w")
	if len(es) != 3 || es[1].Type != "hold" || es[1].Amount != -7 || es[2].Type != "capture" || es[2].MemberID != "m1" || es[2].ChargeID != r.Charge.ID || es[2].Operation != "content_rewrite" {
		t.Fatalf("entries %+v", es)
	}
	// A free operation holds and captures 0.
	r, err = b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k2", Operation: "avatar_selection", Capture: true})
	if err != nil || r.Charge.Cost != 0 || r.Balance.Available != 993 {
		t.Fatalf("free op: %+v %v", r, err)
	}
	b.check(t, "w")
}

func testIdempotency(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	p := ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "same", Operation: "image_1k"}
	r1, err := b.engine.Hold(b.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	p2 := p
	p2.Quantity = 1 // the default, spelled out: the same request
	r2, err := b.engine.Hold(b.ctx, p2)
	if err != nil || r2.Charge.ID != r1.Charge.ID || r2.Balance.Available != r1.Balance.Available {
		t.Fatalf("replay = %+v %v, first %+v", r2.Charge, err, r1.Charge)
	}
	wantBalance(t, b.check(t, "w"), 250, 220, 30, 0)

	// The replay is the first answer, even after the charge moved on.
	if _, err := b.engine.Capture(b.ctx, r1.Charge.ID); err != nil {
		t.Fatal(err)
	}
	r3, err := b.engine.Hold(b.ctx, p)
	if err != nil || r3.Charge.Status != "held" || r3.Charge.ID != r1.Charge.ID {
		t.Fatalf("replay after capture = %+v %v", r3.Charge, err)
	}

	p3 := p
	p3.Operation = "image_2k"
	_, err = b.engine.Hold(b.ctx, p3)
	wantCode(t, err, credits.CodeIdempotencyKeyReused)

	// Keys are scoped to the workspace.
	b.workspace(t, "w2", "free")
	p4 := p
	p4.WorkspaceID = "w2"
	r4, err := b.engine.Hold(b.ctx, p4)
	if err != nil || r4.Charge.ID == r1.Charge.ID {
		t.Fatalf("other workspace = %+v %v", r4.Charge, err)
	}

	// A refusal is an answer too: replayed, even once credits came back.
	big := ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "big", Operation: "image_2k", Quantity: 5}
	_, err = b.engine.Hold(b.ctx, big)
	wantCode(t, err, credits.CodeInsufficientCredits)
	if _, _, err := b.engine.ChangePlan(b.ctx, "w", "pro"); err != nil {
		t.Fatal(err)
	}
	_, err = b.engine.Hold(b.ctx, big)
	e := wantCode(t, err, credits.CodeInsufficientCredits)
	if e.Insufficient.Balance != 220 || e.Insufficient.Required != 300 {
		t.Fatalf("replayed refusal %+v", e.Insufficient)
	}
	wantBalance(t, b.check(t, "w"), 5000, 4970, 0, 30)
}

func testIdempotencyConcurrent(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	const n = 50
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "one", Operation: "section_generation"})
			errs[i] = err
			if err == nil {
				ids[i] = r.Charge.ID
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("request %d: %s %v (first %s)", i, ids[i], errs[i], ids[0])
		}
	}
	wantBalance(t, b.check(t, "w"), 250, 240, 10, 0)
}

func testIdempotencyExpires(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "starter")
	p := ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Capture: true}
	r1, err := b.engine.Hold(b.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(23 * time.Hour)
	r2, err := b.engine.Hold(b.ctx, p)
	if err != nil || r2.Charge.ID != r1.Charge.ID {
		t.Fatalf("within 24h: %v %v", r2.Charge, err)
	}
	b.clock.Advance(2 * time.Hour)
	r3, err := b.engine.Hold(b.ctx, p)
	if err != nil || r3.Charge.ID == r1.Charge.ID {
		t.Fatalf("after 24h the key is free again: %v %v", r3.Charge, err)
	}
	n, err := b.store.DeleteIdempotency(b.ctx, b.clock.Now().Add(-24*time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("delete: %d %v (the only key was renewed)", n, err)
	}
	b.clock.Advance(25 * time.Hour)
	n, err = b.store.DeleteIdempotency(b.ctx, b.clock.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("delete: %d %v", n, err)
	}
	b.check(t, "w")
}

func testConcurrentHolds(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	const n = 200
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: newKey(), Operation: "image_1k"})
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
	wg.Wait()
	if ok.Load() != 8 || refused.Load() != n-8 {
		t.Fatalf("%d holds succeeded and %d were refused, want 8 and %d", ok.Load(), refused.Load(), n-8)
	}
	wantBalance(t, b.check(t, "w"), 250, 10, 240, 0)
}

func testHoldExpiresOnRead(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", HoldSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(59 * time.Second)
	wantBalance(t, b.check(t, "w"), 250, 220, 30, 0)
	b.clock.Advance(time.Second)
	wantBalance(t, b.check(t, "w"), 250, 250, 0, 0)
	c, err := b.engine.Charge(b.ctx, r.Charge.ID)
	if err != nil || c.Status != "expired" {
		t.Fatalf("charge %+v %v", c, err)
	}
	_, err = b.engine.Capture(b.ctx, r.Charge.ID)
	wantCode(t, err, credits.CodeChargeNotHeld)
	es := b.entries(t, "w")
	lastE := es[len(es)-1]
	if lastE.Type != "release" || lastE.Amount != 30 || !lastE.At.Equal(epoch.Add(60*time.Second)) || lastE.ChargeID != r.Charge.ID {
		t.Fatalf("expiry entry %+v", lastE)
	}
}

func testHoldExpiresBySweep(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	b.workspace(t, "w2", "free")
	var ids []string
	for i := range 3 {
		r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: newKey(), Operation: "section_generation", HoldSeconds: int64(10 + i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Charge.ID)
	}
	b.hold(t, "w2", "content_rewrite")
	b.clock.Advance(11 * time.Second)
	n, err := b.engine.Sweep(b.ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v", n, err)
	}
	// The sweep wrote the expiries: read the store directly, not through
	// the engine's lazy check.
	for i, id := range ids {
		c, err := b.store.Charge(b.ctx, id)
		want := "expired"
		if i == 2 {
			want = "held"
		}
		if err != nil || c.Status != want {
			t.Fatalf("charge %d: %s %v, want %s", i, c.Status, err, want)
		}
	}
	a, err := b.store.Account(b.ctx, "w")
	if err != nil || a.Cycle.Available != 240 || a.Cycle.Held != 10 {
		t.Fatalf("account %+v %v", a.Cycle, err)
	}
	b.clock.Advance(time.Second)
	if n, err := b.engine.Sweep(b.ctx); err != nil || n != 1 {
		t.Fatalf("second sweep = %d, %v", n, err)
	}
	if n, err := b.engine.Sweep(b.ctx); err != nil || n != 0 {
		t.Fatalf("third sweep = %d, %v", n, err)
	}
	wantBalance(t, b.check(t, "w"), 250, 250, 0, 0)
	wantBalance(t, b.check(t, "w2"), 250, 249, 1, 0)
}

// Holds belong to their cycle: captured after the reset they count as the
// old cycle's use; released or expired after it, their credits expire.
func testHoldAcrossReset(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	end := epoch.AddDate(0, 1, 0)
	b.clock.Set(end.Add(-30 * time.Minute))
	capt, _ := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "a", Operation: "image_1k", HoldSeconds: 3600})
	rel, _ := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "b", Operation: "section_generation", HoldSeconds: 3600})
	exp, _ := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "c", Operation: "content_rewrite", HoldSeconds: 3600})
	if capt.Charge == nil || rel.Charge == nil || exp.Charge == nil {
		t.Fatal("holds failed")
	}
	wantBalance(t, b.check(t, "w"), 250, 209, 41, 0)

	b.clock.Set(end.Add(time.Minute))
	wantBalance(t, b.check(t, "w"), 250, 250, 0, 0)
	if r, err := b.engine.Capture(b.ctx, capt.Charge.ID); err != nil || r.Charge.Status != "captured" {
		t.Fatalf("capture after reset: %v %v", r, err)
	}
	if r, err := b.engine.Release(b.ctx, rel.Charge.ID); err != nil || r.Charge.Status != "released" {
		t.Fatalf("release after reset: %v %v", r, err)
	}
	b.clock.Set(end.Add(31 * time.Minute))
	bal := b.check(t, "w")
	wantBalance(t, bal, 250, 250, 0, 0)
	c, _ := b.engine.Charge(b.ctx, exp.Charge.ID)
	if c.Status != "expired" {
		t.Fatalf("status %s", c.Status)
	}
	es := b.entries(t, "w")
	got := types(es[4:])
	want := []string{"expire-209", "grant+250", "capture+0", "expire+0", "expire+0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries after the holds %v, want %v", got, want)
	}
}

// Month ends clamp, leap years count, and resets nobody saw are applied on
// the next read, each at its own time.
func testMissedCycles(t *testing.T, b *testBundle) {
	anchor := time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC)
	b.clock.Set(anchor)
	if _, _, err := b.engine.CreateWorkspace(b.ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w", Plan: "starter"}); err != nil {
		t.Fatal(err)
	}
	b.spend(t, "w", "section_generation", 3)
	b.clock.Set(time.Date(2024, 5, 15, 0, 0, 0, 0, time.UTC))
	bal := b.check(t, "w")
	wantBalance(t, bal, 1000, 1000, 0, 0)
	if want := time.Date(2024, 4, 30, 12, 0, 0, 0, time.UTC); !bal.CycleStart.Equal(want) {
		t.Fatalf("cycle_start %v, want %v", bal.CycleStart, want)
	}
	if want := time.Date(2024, 5, 31, 12, 0, 0, 0, time.UTC); !bal.CycleEnd.Equal(want) {
		t.Fatalf("cycle_end %v, want %v", bal.CycleEnd, want)
	}
	var grants []time.Time
	var expires []int64
	for _, e := range b.entries(t, "w") {
		switch e.Type {
		case "grant":
			grants = append(grants, e.At)
		case "expire":
			expires = append(expires, e.Amount)
		}
	}
	want := []time.Time{anchor,
		time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 4, 30, 12, 0, 0, 0, time.UTC)}
	if fmt.Sprint(grants) != fmt.Sprint(want) {
		t.Fatalf("grants at %v, want %v", grants, want)
	}
	if fmt.Sprint(expires) != fmt.Sprint([]int64{-970, -1000, -1000}) {
		t.Fatalf("expires %v", expires)
	}
}

func testPlanChanges(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "pro")
	b.spend(t, "w", "image_2k", 2)
	ws, bal, err := b.engine.ChangePlan(b.ctx, "w", "starter")
	if err != nil || ws.Plan != "pro" || ws.PendingPlan == nil || *ws.PendingPlan != "starter" {
		t.Fatalf("downgrade: %+v %v", ws, err)
	}
	wantBalance(t, bal, 5000, 4880, 0, 120)
	// The same plan again drops the pending downgrade.
	ws, _, err = b.engine.ChangePlan(b.ctx, "w", "pro")
	if err != nil || ws.PendingPlan != nil {
		t.Fatalf("same plan: %+v %v", ws, err)
	}
	if _, _, err := b.engine.ChangePlan(b.ctx, "w", "free"); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.engine.Workspace(b.ctx, "w"); got.PendingPlan == nil || *got.PendingPlan != "free" {
		t.Fatalf("pending = %v", got.PendingPlan)
	}
	b.clock.Set(epoch.AddDate(0, 1, 0))
	bal = b.check(t, "w")
	wantBalance(t, bal, 250, 250, 0, 0)
	if ws, _ := b.engine.Workspace(b.ctx, "w"); ws.Plan != "free" || ws.PendingPlan != nil {
		t.Fatalf("after reset %+v", ws)
	}
	_, _, err = b.engine.ChangePlan(b.ctx, "w", "gold")
	if e := wantCode(t, err, credits.CodeInvalidRequest); e.Field != "plan" {
		t.Fatalf("field %q", e.Field)
	}
	_, _, err = b.engine.ChangePlan(b.ctx, "nope", "pro")
	wantCode(t, err, credits.CodeNotFound)
	// Upgrades in one cycle add up.
	b.engine.ChangePlan(b.ctx, "w", "starter")
	_, bal, _ = b.engine.ChangePlan(b.ctx, "w", "pro")
	wantBalance(t, bal, 5000, 5000, 0, 0)
	b.check(t, "w")
}

func testAdjust(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	bal, err := b.engine.Adjust(b.ctx, "w", 50, "goodwill")
	if err != nil {
		t.Fatal(err)
	}
	wantBalance(t, bal, 300, 300, 0, 0)
	_, err = b.engine.Adjust(b.ctx, "w", -301, "too much")
	if e := wantCode(t, err, credits.CodeInvalidRequest); e.Field != "amount" {
		t.Fatalf("field %q", e.Field)
	}
	if _, err = b.engine.Adjust(b.ctx, "w", -100, "correction"); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, b.check(t, "w"), 200, 200, 0, 0)
	es := b.entries(t, "w")
	if es[1].Reason != "goodwill" || es[2].Amount != -100 {
		t.Fatalf("entries %+v", es)
	}
}

func testLedgerPages(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "pro")
	b.spend(t, "w", "content_rewrite", 30) // 61 entries with the grant
	p, err := b.engine.Ledger(b.ctx, "w", 0, "")
	if err != nil || len(p.Entries) != 50 || p.NextCursor == nil {
		t.Fatalf("first page: %d entries, %v", len(p.Entries), err)
	}
	if p.Entries[0].Type != "capture" || p.Entries[0].AvailableAfter != 4970 {
		t.Fatalf("newest first: %+v", p.Entries[0])
	}
	p2, err := b.engine.Ledger(b.ctx, "w", 50, *p.NextCursor)
	if err != nil || len(p2.Entries) != 11 || p2.NextCursor != nil || p2.Entries[10].Type != "grant" {
		t.Fatalf("second page: %d %v", len(p2.Entries), err)
	}
	seen := map[string]bool{}
	for _, e := range append(p.Entries, p2.Entries...) {
		if seen[e.ID] {
			t.Fatalf("entry %s twice", e.ID)
		}
		seen[e.ID] = true
	}
	for _, tc := range []struct {
		limit  int
		cursor string
		field  string
	}{{-1, "", "limit"}, {501, "", "limit"}, {10, "garbage!", "cursor"}, {10, "bGU6eA", "cursor"}} {
		_, err := b.engine.Ledger(b.ctx, "w", tc.limit, tc.cursor)
		if e := wantCode(t, err, credits.CodeInvalidRequest); e.Field != tc.field {
			t.Fatalf("limit %d cursor %q: field %q", tc.limit, tc.cursor, e.Field)
		}
	}
	_, err = b.engine.Ledger(b.ctx, "nope", 10, "")
	wantCode(t, err, credits.CodeNotFound)
	// A cursor is its workspace's: one from another workspace's ledger
	// (or naming no entry) is refused, not read as a position.
	b.workspace(t, "v", "free")
	_, err = b.engine.Ledger(b.ctx, "v", 10, *p.NextCursor)
	if e := wantCode(t, err, credits.CodeInvalidRequest); e.Field != "cursor" {
		t.Fatalf("another workspace's cursor: field %q", e.Field)
	}
	_, err = b.engine.Ledger(b.ctx, "w", 10, "bGU6OTk5OTk5OQ") // le:9999999
	if e := wantCode(t, err, credits.CodeInvalidRequest); e.Field != "cursor" {
		t.Fatalf("a cursor naming no entry: field %q", e.Field)
	}
	// An exact page boundary has no next page.
	p3, err := b.engine.Ledger(b.ctx, "w", 61, "")
	if err != nil || len(p3.Entries) != 61 || p3.NextCursor != nil {
		t.Fatalf("exact page: %d %v %v", len(p3.Entries), p3.NextCursor, err)
	}
}

func testValidationWritesNothing(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	member := ""
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'k'
	}
	cases := []struct {
		p     ledger.HoldParams
		field string
	}{
		{ledger.HoldParams{WorkspaceID: "w", Operation: "image_1k"}, "Idempotency-Key"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: string(long), Operation: "image_1k"}, "Idempotency-Key"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k"}, "operation"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "video"}, "operation"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Quantity: -1}, "quantity"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Quantity: credits.MaxQuantity + 1}, "quantity"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", HoldSeconds: -5}, "hold_seconds"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", HoldSeconds: 3601}, "hold_seconds"},
		{ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", MemberID: &member}, "member_id"},
	}
	for _, c := range cases {
		_, err := b.engine.Hold(b.ctx, c.p)
		if e := wantCode(t, err, credits.CodeInvalidRequest); e.Field != c.field {
			t.Errorf("%+v: field %q, want %q", c.p, e.Field, c.field)
		}
	}
	_, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "nope", IdempotencyKey: "k", Operation: "image_1k"})
	wantCode(t, err, credits.CodeNotFound)
	// The key used by the failures is still free: nothing was stored.
	r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Quantity: 2})
	if err != nil || r.Charge.Cost != 60 {
		t.Fatalf("hold after refusals: %+v %v", r, err)
	}
	if n := len(b.entries(t, "w")); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	for _, c := range []ledger.CreateWorkspaceParams{{Name: ""}, {ID: "bad id!", Name: "x"}, {Name: "x", Plan: "gold"}} {
		_, _, err := b.engine.CreateWorkspace(b.ctx, c)
		wantCode(t, err, credits.CodeInvalidRequest)
	}
	wantBalance(t, b.check(t, "w"), 250, 190, 60, 0)
}

func testCharge(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	m := "alice"
	r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Quantity: 3, MemberID: &m, HoldSeconds: 30})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.engine.Charge(b.ctx, r.Charge.ID)
	if err != nil || c.ID != r.Charge.ID || c.WorkspaceID != "w" || c.Operation != "content_rewrite" || c.Quantity != 3 ||
		c.Cost != 3 || c.Status != "held" || c.MemberID == nil || *c.MemberID != "alice" || !c.CreatedAt.Equal(epoch) ||
		!c.ExpiresAt.Equal(epoch.Add(30*time.Second)) {
		t.Fatalf("charge %+v %v", c, err)
	}
	_, err = b.engine.Charge(b.ctx, "ch_nope")
	wantCode(t, err, credits.CodeNotFound)
}

func testMetadata(t *testing.T, b *testBundle) {
	b.workspace(t, "w", "free")
	md := map[string]string{"page": "home", "field": "hero"}
	r, err := b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.engine.Charge(b.ctx, r.Charge.ID)
	if err != nil || c.Metadata["page"] != "home" || c.Metadata["field"] != "hero" || len(c.Metadata) != 2 {
		t.Fatalf("metadata %+v %v", c.Metadata, err)
	}
	_, err = b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Metadata: map[string]string{"page": "about"}})
	wantCode(t, err, credits.CodeIdempotencyKeyReused)
	big := map[string]string{}
	for i := range 51 {
		big[fmt.Sprint(i)] = "v"
	}
	_, err = b.engine.Hold(b.ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k2", Operation: "content_rewrite", Metadata: big})
	if e := wantCode(t, err, credits.CodeInvalidRequest); e.Field != "metadata" {
		t.Fatalf("field %q", e.Field)
	}
	_ = errors.New
}
