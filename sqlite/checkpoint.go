package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointer copies the WAL back into the database file in the background,
// on its own connection, so the writer's commits never pay for it. PASSIVE
// checkpoints never block the writer or readers; one TRUNCATE at close leaves
// a single file behind.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

// checkpointInterval is how often the WAL is copied back.
const checkpointInterval = 250 * time.Millisecond

func (s *Store) startCheckpointer() error {
	db, err := sql.Open("sqlite", dsn(s.path, false))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	s.ckpt = checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go s.ckpt.run()
	return nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`) // the next tick retries
			cancel()
		}
	}
}

func (s *Store) stopCheckpointer() {
	c := &s.ckpt
	if c.db == nil {
		return
	}
	close(c.stop)
	<-c.done
	_, _ = c.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	c.db.Close()
	c.db = nil
}
