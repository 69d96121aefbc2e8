// Package storetest is the one conformance suite every store runs: charges,
// idempotency, cycles, the ledger, expiry and the invariants, driven through
// the engine (the batching path) with an injected clock. A store's tests call
// Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// OpenFunc opens a new, empty store for one test; it registers its own
// cleanup.
type OpenFunc func(t *testing.T) ledger.Store

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t.UTC()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t.UTC()
	c.mu.Unlock()
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testBundle struct {
	store  ledger.Store
	engine *ledger.Engine
	clock  *Clock
	ctx    context.Context
}

// batchSizes are the writer's batch limits every test runs under: one
// command per transaction, and many.
var batchSizes = []int{1, 256}

var epoch = time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC)

func setup(t *testing.T, open OpenFunc, maxBatch int) *testBundle {
	t.Helper()
	st := open(t)
	clk := NewClock(epoch)
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{NowFunc: clk.Now, MaxBatch: maxBatch, Writers: 4, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return &testBundle{store: st, engine: e, clock: clk, ctx: context.Background()}
}

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *testBundle)
	}{
		{"CreateWorkspace", testCreateWorkspace},
		{"FreeWorkspaceStory", testFreeWorkspaceStory},
		{"CaptureReleaseRules", testCaptureReleaseRules},
		{"CaptureAtOnce", testCaptureAtOnce},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"IdempotencyExpires", testIdempotencyExpires},
		{"ConcurrentHoldsNeverOverspend", testConcurrentHolds},
		{"HoldExpiresOnRead", testHoldExpiresOnRead},
		{"HoldExpiresBySweep", testHoldExpiresBySweep},
		{"HoldAcrossReset", testHoldAcrossReset},
		{"MissedCycles", testMissedCycles},
		{"PlanChanges", testPlanChanges},
		{"Adjust", testAdjust},
		{"LedgerPages", testLedgerPages},
		{"ValidationWritesNothing", testValidationWritesNothing},
		{"Charge", testCharge},
		{"Metadata", testMetadata},
		{"AIReplayAndRerun", testAIReplayAndRerun},
		{"AIClaimOnce", testAIClaimOnce},
		{"AICrashBeforeCapture", testAICrashBeforeCapture},
	}
	for _, size := range batchSizes {
		t.Run(fmt.Sprintf("batch=%d", size), func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, setup(t, open, size))
				})
			}
		})
	}
}
