package sqlite

import (
	"context"
	"log/slog"
	"time"
)

// The materializer copies the WAL back into the database file itself, on its
// own connection, between two of its windows (no connection checkpoints on
// commit: wal_autocheckpoint is 0).
//
// It used to be a checkpointer goroutine's job, on a connection of its own,
// every 250 ms. But SQLite starts the WAL over from its beginning only when
// a write transaction begins with the whole WAL copied back, and under
// steady load the materializer begins a window while the other connection's
// checkpoint is still behind its last commit: the WAL never started over and
// only grew, to 99–163 MB in one 5 s row of credits bench, every frame
// appended to a growing file. Between its own windows nothing else writes
// (the AI and auth records, rarely), so its checkpoint copies everything
// back unless a reader holds an older snapshot, and its next window starts
// the WAL over.

// checkpointInterval is the longest a window's frames stay in the WAL under
// steady load; the materializer also checkpoints whenever it falls idle.
const checkpointInterval = 250 * time.Millisecond

const (
	qCheckpoint = `PRAGMA wal_checkpoint(PASSIVE)`
	// At close: the WAL copied back and emptied, one file left.
	qCheckpointTruncate = `PRAGMA wal_checkpoint(TRUNCATE)`
)

// afterWindow checkpoints if the last checkpoint is checkpointInterval old.
func (s *Store) afterWindow(ctx context.Context) {
	s.walDirty.Store(true)
	if time.Since(s.checkpointed) >= s.checkpointEvery {
		s.checkpoint(ctx)
	}
}

// checkpoint copies the WAL back into the database file (PASSIVE: it waits
// for no one). A failure is logged: the frames stay in the WAL, where
// readers find them, and the next checkpoint copies them.
func (s *Store) checkpoint(ctx context.Context) {
	if err := s.lite.exec(ctx, qCheckpoint); err != nil {
		slog.Warn("sqlite: checkpointing the WAL failed; the next window retries", "err", err)
	}
	s.checkpointed = time.Now()
	s.walDirty.Store(false)
}
