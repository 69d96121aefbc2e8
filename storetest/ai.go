package storetest

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/ledger"
)

// The AI request records, through the gateway, on stores that keep them.

func (b *testBundle) gateway(t *testing.T, p ai.Provider) (*ai.Gateway, ai.RequestStore) {
	t.Helper()
	rs, ok := b.store.(ai.RequestStore)
	if !ok {
		t.Skip("this store keeps no AI requests")
	}
	return ai.NewGateway(ai.GatewayConfig{Engine: b.engine, Provider: p, Store: rs, Timeout: 5 * time.Second, NowFunc: b.clock.Now}), rs
}

func ptr(s string) *string { return &s }

func testAIReplayAndRerun(t *testing.T, b *testBundle) {
	gw, _ := b.gateway(t, ai.Demo{})
	b.workspace(t, "w", "free")
	ctx := context.Background()
	p := ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "section_generation", Prompt: ptr("pricing")}
	first, err := gw.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := gw.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(first)
	c, _ := json.Marshal(again)
	if string(a) != string(c) {
		t.Fatalf("replay differs:\n%s\n%s", a, c)
	}
	other := p
	other.Prompt = ptr("about")
	if _, err := gw.Run(ctx, other); credits.ErrorCode(err) != credits.CodeIdempotencyKeyReused {
		t.Fatalf("other body: %v", err)
	}
	fail := ai.RunParams{WorkspaceID: "w", IdempotencyKey: "f", Operation: "content_rewrite", Text: ptr("x " + ai.FailMarker)}
	for range 2 {
		if _, err := gw.Run(ctx, fail); credits.ErrorCode(err) != credits.CodeOperationFailed {
			t.Fatalf("failing: %v", err)
		}
	}
	wantBalance(t, b.check(t, "w"), 250, 240, 0, 10)
	got := types(b.entries(t, "w"))
	want := []string{"grant+250", "hold-10", "capture+0", "hold-1", "release+1", "hold-1", "release+1"}
	if len(got) != len(want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ledger %v, want %v", got, want)
		}
	}
}

// Many callers with one key: one claims it, the provider runs once.
func testAIClaimOnce(t *testing.T, b *testBundle) {
	_, rs := b.gateway(t, ai.Demo{})
	ctx := context.Background()
	now := b.clock.Now()
	var claimed atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := rs.ClaimRequest(ctx, "w", "k", "fp", now, now.Add(-time.Hour))
			if err != nil {
				t.Errorf("claim: %v", err)
			}
			if ok {
				claimed.Add(1)
			}
		}()
	}
	wg.Wait()
	if claimed.Load() != 1 {
		t.Fatalf("%d callers claimed one key", claimed.Load())
	}
	// A failed attempt can be claimed again, once, as the next attempt.
	rec, _, _ := rs.ClaimRequest(ctx, "w", "k", "fp", now, now.Add(-time.Hour))
	if rec.Status != ai.StatusRunning || rec.Attempt != 1 {
		t.Fatalf("record %+v", rec)
	}
	rec.Status, rec.UpdatedAt = ai.StatusFailed, now
	if err := rs.SaveRequest(ctx, rec); err != nil {
		t.Fatal(err)
	}
	next, ok, err := rs.ClaimRequest(ctx, "w", "k", "fp", now, now.Add(-time.Hour))
	if err != nil || !ok || next.Attempt != 2 || next.Status != ai.StatusRunning {
		t.Fatalf("next attempt %+v %v %v", next, ok, err)
	}
	// Another fingerprint never claims it.
	if r, ok, err := rs.ClaimRequest(ctx, "w", "k", "other", now, now.Add(time.Hour)); ok || err != nil || r.Fingerprint != "fp" {
		t.Fatalf("other fingerprint claimed: %+v %v %v", r, ok, err)
	}
	// A running attempt not updated since staleBefore is taken over.
	later := now.Add(time.Hour)
	r, ok, err := rs.ClaimRequest(ctx, "w", "k", "fp", later, later.Add(-time.Minute))
	if err != nil || !ok || r.Attempt != 3 {
		t.Fatalf("stale takeover %+v %v %v", r, ok, err)
	}
}

// A process that died after saving the result but before capturing: the
// next retry captures the same hold and answers the saved result.
func testAICrashBeforeCapture(t *testing.T, b *testBundle) {
	var calls atomic.Int64
	gw, rs := b.gateway(t, countingProvider{&calls})
	b.workspace(t, "w", "free")
	ctx := context.Background()
	p := ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Text: ptr("hi")}
	now := b.clock.Now()
	rec, claimed, err := rs.ClaimRequest(ctx, "w", "k", ai.Fingerprint(p), now, now.Add(-time.Hour))
	if err != nil || !claimed {
		t.Fatal(claimed, err)
	}
	hold, err := b.engine.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "ai:k#1", Operation: "content_rewrite", HoldSeconds: 180})
	if err != nil {
		t.Fatal(err)
	}
	rec.Status, rec.ChargeID, rec.UpdatedAt = ai.StatusCapturing, hold.Charge.ID, now
	rec.Result, _ = json.Marshal(ai.Result{Text: "saved text", Provider: "demo"})
	if err := rs.SaveRequest(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Run(ctx, p); credits.ErrorCode(err) != credits.CodeRequestInProgress {
		t.Fatalf("fresh: %v", err)
	}
	b.clock.Advance(90 * time.Second) // stale, the hold still held
	resp, err := gw.Run(ctx, p)
	if err != nil || resp.Result.Text != "saved text" || resp.Charge.ID != hold.Charge.ID || resp.Charge.Status != "captured" {
		t.Fatalf("recovery: %+v %v", resp, err)
	}
	if calls.Load() != 0 {
		t.Fatal("recovery ran the operation again")
	}
	wantBalance(t, b.check(t, "w"), 250, 249, 0, 1)
}

type countingProvider struct{ n *atomic.Int64 }

func (countingProvider) Name() string { return "counting" }

func (c countingProvider) Run(ctx context.Context, t ai.Task) (ai.Result, error) {
	c.n.Add(1)
	return ai.Demo{}.Run(ctx, t)
}
