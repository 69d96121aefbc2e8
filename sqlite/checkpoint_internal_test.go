package sqlite

import (
	"context"
	"encoding/binary"
	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// openTemp opens a store in a new directory, closed when the test ends.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credits.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// walState is the WAL file's size and its header's checkpoint sequence
// number, which SQLite increments each time the WAL starts over.
func walState(t *testing.T, path string) (size int64, restarts uint32) {
	t.Helper()
	b, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 {
		t.Fatalf("WAL of %d bytes: no header", len(b))
	}
	return int64(len(b)), binary.BigEndian.Uint32(b[12:16])
}

// Windows back to back, as under steady load: checkpointing between them,
// the materializer starts the WAL over at each, so the file stays the size
// of a window's frames. Without it (the control: no checkpoint due within
// the test) every window's frames are appended to the file.
func TestWALStartsOverBetweenWindows(t *testing.T) {
	const windows = 12
	run := func(every time.Duration) (second, last int64, restarts uint32) {
		ctx := context.Background()
		s, path := openTemp(t)
		s.checkpointEvery = every
		next := pairWindows(t, s, 500, 300)
		var first uint32
		for i := range windows {
			if err := s.materialize(ctx, next()); err != nil {
				t.Fatal(err)
			}
			size, n := walState(t, path)
			switch i {
			case 0:
				first = n
			case 1:
				second = size
			}
			last, restarts = size, n-first
		}
		return second, last, restarts
	}

	second, last, restarts := run(0)
	if last > 2*second || restarts != windows-1 {
		t.Errorf("checkpointing after each window: WAL %d bytes after %d windows, %d after 2; started over %d times after the first, want %d",
			last, windows, second, restarts, windows-1)
	}
	grownSecond, grown, grownRestarts := run(time.Hour)
	if grown < 4*grownSecond || grownRestarts != 0 {
		t.Errorf("control without checkpoints: WAL %d bytes after %d windows, %d after 2; started over %d times", grown, windows, grownSecond, grownRestarts)
	}
	if grown < 4*last {
		t.Errorf("the WAL without checkpoints (%d bytes) is not much larger than with them (%d)", grown, last)
	}
}

// Falling idle, the materializer copies back what its last window left in
// the WAL (the periodic checkpoint not due), so the next window starts the
// WAL over however soon it comes.
func TestMaterializerCheckpointsWhenIdle(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	// Only the first window's checkpoint (none was due before) and the
	// idle ones. Set before any command: the materializer reads it after
	// the engine's first batch reaches it.
	s.checkpointEvery = time.Hour
	e, err := ledger.New(s, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	pair := func(key string) {
		t.Helper()
		r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: key, Operation: "content_rewrite"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Capture(ctx, r.Charge.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pair("first")
	waitIdleCheckpoint := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.walDirty.Load() {
			if time.Now().After(deadline) {
				t.Fatal("the idle materializer did not checkpoint")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitIdleCheckpoint()
	for i, key := range []string{"a", "b", "c"} {
		_, before := walState(t, path)
		pair(key)
		waitIdleCheckpoint()
		if _, after := walState(t, path); after <= before {
			t.Errorf("pair %d: checkpoint sequence %d, was %d: the WAL did not start over", i, after, before)
		}
	}
}
