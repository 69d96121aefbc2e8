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
	schema *pgSchema // PostgreSQL: dropped on Close
	meter  *writerMeter
}

// writerMeter reads an in-process engine's writer during the measured load:
// its counters (batches, commands, busy time) and, on SQLite, each batch's
// journal write+fdatasync. The engine rows and the HTTP rows of a server
// the bench started both report through it.
type writerMeter struct {
	engine *ledger.Engine
	setup  ledger.Stats // the counters when the measured load began
	// syncs is nil unless the store is SQLite. The hook runs on the
	// engine's writer; finish reads it from another goroutine.
	syncs *syncTimes
}

type syncTimes struct {
	mu   sync.Mutex
	from time.Time // when measuring began
	h    Histogram
}

// record takes one write+sync as it ends. One under way when measuring
// began counts only its part since, as the writer's busy time does: the
// syncs' share of the row can then not pass the writer's.
func (s *syncTimes) record(d time.Duration) {
	end := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if since := end.Sub(s.from); d > since {
		d = since
	}
	if d > 0 {
		s.h.Record(d)
	}
}

func newWriterMeter(e *ledger.Engine, st ledger.Store) *writerMeter {
	m := &writerMeter{engine: e}
	if sq, ok := st.(*sqlite.Store); ok {
		m.syncs = &syncTimes{}
		sq.OnJournalSync(m.syncs.record)
	}
	m.start()
	return m
}

// start starts the counters and the sync times afresh: finish reports
// what happened since.
func (m *writerMeter) start() {
	m.setup = m.engine.Stats()
	if m.syncs != nil {
		m.syncs.mu.Lock()
		m.syncs.from, m.syncs.h = time.Now(), Histogram{}
		m.syncs.mu.Unlock()
	}
}

// finish puts into res how many commands the writer committed together,
// on average (group commit at work), how busy it was, and the syncs.
func (m *writerMeter) finish(res *Result) {
	s := m.engine.Stats()
	res.commands, res.batches = s.Commands-m.setup.Commands, s.Batches-m.setup.Batches
	res.busy, res.Writers = s.Busy-m.setup.Busy, s.Writers
	if m.syncs != nil {
		m.syncs.mu.Lock()
		h := m.syncs.h
		m.syncs.mu.Unlock()
		res.syncs = &h
	}
	res.setFigures()
}

func newEngineTarget(ctx context.Context, cfg *Config, s scenario, tmp string, ids []string) (_ *engineTarget, err error) {
	t := &engineTarget{ids: ids}
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
	t.meter = newWriterMeter(t.engine, t.store)
	return t, nil
}

func (t *engineTarget) StartMeasuring() { t.meter.start() }

// Finish reports the writer's figures during the load.
func (t *engineTarget) Finish(ctx context.Context, res *Result) error {
	t.meter.finish(res)
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
