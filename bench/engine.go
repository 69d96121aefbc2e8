package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/postgres"
	"github.com/credits-dev/credits/sqlite"
)

// engineTarget is the ledger engine in-process on a fresh store.
type engineTarget struct {
	engine *ledger.Engine
	store  interface {
		ledger.Store
		Close() error
	}
	ids    []string
	schema *pgSchema    // PostgreSQL: dropped on Close
	setup  ledger.Stats // the writer's counters when the measured load began
	syncs  *syncTimes   // SQLite: each batch's journal write and sync during the measured load
}

// syncTimes records the journal's write+fdatasync times (the hook runs on
// the engine's writer; Finish reads them from another goroutine).
type syncTimes struct {
	mu sync.Mutex
	h  Histogram
}

func (s *syncTimes) record(d time.Duration) {
	s.mu.Lock()
	s.h.Record(d)
	s.mu.Unlock()
}

func newEngineTarget(ctx context.Context, cfg *Config, s scenario, tmp string, ids []string) (_ *engineTarget, err error) {
	t := &engineTarget{ids: ids, syncs: &syncTimes{}}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	switch s.backend {
	case "sqlite":
		st, err := sqlite.Open(ctx, filepath.Join(tmp, fileName(s.name)+".db"))
		if err != nil {
			return nil, err
		}
		t.store = st
	case "postgres":
		if t.schema, err = newPGSchema(ctx, cfg.PostgresURL); err != nil {
			return nil, err
		}
		st, err := postgres.Open(ctx, t.schema.url)
		if err != nil {
			return nil, err
		}
		t.store = st
	default:
		return nil, fmt.Errorf("engine on %q", s.backend)
	}
	t.engine, err = ledger.New(t.store, Catalog(), ledger.Options{MaxBatch: cfg.MaxBatch, Writers: cfg.Writers, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	err = parallel(ctx, len(ids), cfg.Workers, func(ctx context.Context, i int) error {
		_, _, err := t.engine.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: ids[i], Name: ids[i], Plan: benchPlan.ID})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating workspaces: %w", err)
	}
	t.StartMeasuring()
	if st, ok := t.store.(*sqlite.Store); ok {
		st.OnJournalSync(t.syncs.record)
	}
	return t, nil
}

// StartMeasuring starts the writer's counters and the journal's sync times
// afresh: Finish reports what happened since.
func (t *engineTarget) StartMeasuring() {
	t.setup = t.engine.Stats()
	t.syncs.mu.Lock()
	t.syncs.h = Histogram{}
	t.syncs.mu.Unlock()
}

// Finish reports how many commands the writer committed together, on
// average, during the load: group commit at work.
func (t *engineTarget) Finish(ctx context.Context, res *Result) error {
	s := t.engine.Stats()
	res.commands, res.batches = s.Commands-t.setup.Commands, s.Batches-t.setup.Batches
	res.busy, res.Writers = s.Busy-t.setup.Busy, s.Writers
	if _, ok := t.store.(*sqlite.Store); ok {
		t.syncs.mu.Lock()
		h := t.syncs.h
		t.syncs.mu.Unlock()
		res.syncs = &h
	}
	res.setFigures()
	return nil
}

func (t *engineTarget) Pair(ctx context.Context, workspaceID, key string) error {
	r, err := t.engine.Hold(ctx, ledger.HoldParams{WorkspaceID: workspaceID, IdempotencyKey: key, Operation: benchOperation})
	if err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	if _, err := t.engine.Capture(ctx, r.Charge.ID); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	return nil
}

// Verify checks every invariant of the store (ledger.Verify).
func (t *engineTarget) Verify(ctx context.Context) error {
	return ledger.Check(ctx, t.store)
}

func (t *engineTarget) Close() error {
	var errs []error
	if t.engine != nil {
		errs = append(errs, t.engine.Close())
	}
	if t.store != nil {
		errs = append(errs, t.store.Close())
	}
	if t.schema != nil {
		errs = append(errs, t.schema.drop())
	}
	return errors.Join(errs...)
}

// fileName turns a scenario name into a file name.
func fileName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == '/' {
			b[i] = '-'
		}
	}
	return string(b)
}

// pgSchema is a fresh schema in the --pg database, and a URL whose
// connections use it.
type pgSchema struct {
	base, name, url string
}

func newPGSchema(ctx context.Context, base string) (*pgSchema, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("--pg: give a postgres:// URL")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := &pgSchema{base: base, name: "credits_bench_" + hex.EncodeToString(b[:])}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("--pg: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+s.name); err != nil {
		return nil, fmt.Errorf("--pg: %w", err)
	}
	q := u.Query()
	q.Set("search_path", s.name)
	u.RawQuery = q.Encode()
	s.url = u.String()
	return s, nil
}

// drop removes the schema and everything in it.
func (s *pgSchema) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA "+s.name+" CASCADE")
	return err
}
