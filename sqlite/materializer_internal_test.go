package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// The writer runs freely below half the limit, is slowed by at most maxPace
// past it, and waits for the materializer's progress at the limit.
func TestWaitRoomPaces(t *testing.T) {
	m := newMaterializer(0)
	ctx := context.Background()
	timed := func(items int) time.Duration {
		m.mu.Lock()
		m.items = items
		m.mu.Unlock()
		start := time.Now()
		if err := m.waitRoom(ctx); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := timed(maxPendingItems / 4); d > maxPace/2 {
		t.Fatalf("below half the limit the writer waited %v", d)
	}
	if d := timed(maxPendingItems * 3 / 4); d < maxPace/4 || d > 50*maxPace {
		t.Fatalf("at three quarters the writer waited %v, want about %v", d, maxPace/2)
	}

	// At the limit it waits for a window to finish.
	m.mu.Lock()
	m.items = maxPendingItems
	m.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- m.waitRoom(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("returned at the limit: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	m.mu.Lock()
	m.items = 0
	close(m.progress)
	m.progress = make(chan struct{})
	m.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A writer that gives up is told why when the tables are failing.
	m.mu.Lock()
	m.items = maxPendingItems
	m.failure = errors.New("disk full")
	m.mu.Unlock()
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := m.waitRoom(short); err == nil || !errors.Is(err, m.failure) {
		t.Fatalf("err %v, want the tables' failure", err)
	}
}

// The writer wakes the materializer only when there is something for it to
// decide: a first batch starts its wait for more, a full window ends it.
// Every other batch only joins the queue (woken for each, the materializer
// looked and slept again, a thread woken on the writer's path each time).
func TestPushWakesOnlyToDecide(t *testing.T) {
	m := newMaterializer(0)
	rec := func(batch uint64, rows int) *record {
		return &record{Batch: batch, Changes: &ledger.Changes{Entries: make([]credits.Entry, rows)}}
	}
	woken := func() bool {
		select {
		case <-m.wake:
			return true
		default:
			return false
		}
	}
	for _, step := range []struct {
		name string
		rows int
		wake bool
	}{
		{"the first batch", 10, true},
		{"a batch that leaves the window short", minWindowItems - 20, false},
		{"a batch that fills the window", 10, true},
		{"a batch past a full window", 10, false},
	} {
		m.push(rec(m.queued+1, step.rows))
		if got := woken(); got != step.wake {
			t.Errorf("%s: woken %v, want %v", step.name, got, step.wake)
		}
	}

	// Emptied, the queue's next batch wakes it again.
	m.mu.Lock()
	m.queue, m.items = nil, 0
	m.mu.Unlock()
	m.push(rec(m.queued+1, 1))
	if !woken() {
		t.Error("the first batch after the queue emptied did not wake the materializer")
	}
}

// A lone batch reaches the tables by itself, with no Flush to hurry it:
// the materializer, woken by it, writes it within maxLag.
func TestLoneBatchIsMaterialized(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "credits.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := ledger.New(s, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "ws_lone", Name: "Lone", Plan: "free"}); err != nil {
		t.Fatal(err)
	}
	s.mat.mu.Lock()
	target := s.mat.queued
	s.mat.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mat.mu.Lock()
		done := s.mat.done
		s.mat.mu.Unlock()
		if done >= target {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %d still not in the tables after 10s (done %d)", target, done)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM workspaces WHERE id = 'ws_lone'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the workspaces table has %d rows for ws_lone, want 1", n)
	}
}
