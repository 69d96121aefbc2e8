package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"
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
