// Package postgres is the PostgreSQL store, for several `credits serve`
// instances on one database. Each instance has its own group-commit writer;
// a batch takes a transaction-scoped advisory lock on every workspace it
// touches (in one global order, so batches never deadlock) before it reads
// them, so two instances never apply commands to one workspace at once:
// no hold is released twice and no cycle is granted twice. Unique indexes on
// the ledger back that up. Committed balance changes are announced with
// NOTIFY so every instance's balance streams see them.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/ledger"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// notifyChannel carries the ids of workspaces whose balance changed.
const notifyChannel = "credits_balance"

// migrationLock is the advisory lock key that serializes migrations of
// instances starting together.
const migrationLock = 0x6372656469747301 // "credits\x01"

// Store is the PostgreSQL store. It implements ledger.Store and auth.Store.
type Store struct {
	pool *pgxpool.Pool

	// Balance changes waiting to be announced (see announceLoop).
	notifyMu   sync.Mutex
	notifyIDs  []string
	notifyWake chan struct{}
	quit       chan struct{}
	announced  chan struct{}
	closeOnce  sync.Once

	homes homes // the workspaces of recent charges
}

var (
	_ ledger.Store       = (*Store)(nil)
	_ auth.Store         = (*Store)(nil)
	_ ledger.BatchLoader = (*tx)(nil)
)

// Open connects to the database at url (postgres:// or postgresql://; pool
// settings such as pool_max_conns go in the URL) and applies migrations.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// Plan every statement for its parameters. pgx prepares statements,
	// and PostgreSQL then settles on one generic plan per statement, made
	// while the tables were small: a sequential scan that is wrong forever
	// after. Our statements are key lookups; planning them is cheap.
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, notifyWake: make(chan struct{}, 1), quit: make(chan struct{}), announced: make(chan struct{})}
	if err := s.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	go s.announceLoop()
	return s, nil
}

// Migrate applies the migrations not yet applied, each in its own
// transaction, under an advisory lock so instances starting together take
// turns.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLock)) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	if have > len(names) {
		return fmt.Errorf("postgres: the database has schema version %d, newer than this binary's %d", have, len(names))
	}
	for v := have + 1; v <= len(names); v++ {
		sql, err := migrationFiles.ReadFile(names[v-1])
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", names[v-1], err)
		}
	}
	return nil
}

// Close announces the changes not yet announced and closes the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.announced
		s.pool.Close()
	})
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Pool is the connection pool, for tools and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func optTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

const accountCols = `w.id, w.name, w.plan, w.pending_plan, w.cycle_anchor, w.created_at, w.next_expiry,
  c.n, c.start_at, c.end_at, c.granted, c.available, c.held, c.used, c.expired`

func scanAccount(row pgx.Row) (ledger.Account, error) {
	var a ledger.Account
	var next *time.Time
	err := row.Scan(&a.Workspace.ID, &a.Workspace.Name, &a.Workspace.Plan, &a.Workspace.PendingPlan, &a.Workspace.CycleAnchor, &a.Workspace.CreatedAt, &next,
		&a.Cycle.N, &a.Cycle.Start, &a.Cycle.End, &a.Cycle.Granted, &a.Cycle.Available, &a.Cycle.Held, &a.Cycle.Used, &a.Cycle.Expired)
	a.Workspace.CycleAnchor, a.Workspace.CreatedAt = utc(a.Workspace.CycleAnchor), utc(a.Workspace.CreatedAt)
	a.Cycle.Start, a.Cycle.End, a.NextExpiry = utc(a.Cycle.Start), utc(a.Cycle.End), optTime(next)
	return a, err
}

const chargeCols = `id, workspace_id, cycle, operation, quantity, cost, status, member_id, metadata, created_at, expires_at, finalized_at`

func scanCharge(row pgx.Row) (credits.Charge, error) {
	var c credits.Charge
	var fin *time.Time
	var md []byte
	if err := row.Scan(&c.ID, &c.WorkspaceID, &c.Cycle, &c.Operation, &c.Quantity, &c.Cost, &c.Status, &c.MemberID, &md, &c.CreatedAt, &c.ExpiresAt, &fin); err != nil {
		return c, err
	}
	if len(md) > 0 {
		if err := json.Unmarshal(md, &c.Metadata); err != nil {
			return c, fmt.Errorf("charge %s: metadata: %w", c.ID, err)
		}
	}
	c.CreatedAt, c.ExpiresAt, c.FinalizedAt = utc(c.CreatedAt), utc(c.ExpiresAt), optTime(fin)
	return c, nil
}

// Account reads a workspace and its current cycle.
func (s *Store) Account(ctx context.Context, id string) (ledger.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM workspaces w JOIN cycles c ON c.workspace_id = w.id AND c.n = w.cycle WHERE w.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, credits.NotFound("workspace", id)
	}
	return a, err
}

// Charge reads a charge.
func (s *Store) Charge(ctx context.Context, id string) (credits.Charge, error) {
	c, err := scanCharge(s.pool.QueryRow(ctx, `SELECT `+chargeCols+` FROM charges WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, credits.NotFound("charge", id)
	}
	return c, err
}

// Entries reads a page of a workspace's ledger, newest first.
func (s *Store) Entries(ctx context.Context, ws string, before int64, limit int) ([]credits.Entry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	} else {
		// A cursor names the workspace's last entry of the page before,
		// as on SQLite, whose ledger pages follow from that entry.
		var ok bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM entries WHERE seq = $1 AND workspace_id = $2)`, before, ws).Scan(&ok); err != nil {
			return nil, err
		}
		if !ok {
			return nil, credits.Invalid("cursor", "cursor is not one this server gave for this workspace")
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason
		FROM entries WHERE workspace_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, ws, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []credits.Entry
	for rows.Next() {
		var e credits.Entry
		var charge, op, member, reason *string
		if err := rows.Scan(&e.Seq, &e.WorkspaceID, &e.Cycle, &e.At, &e.Type, &e.Amount, &e.AvailableAfter, &charge, &op, &member, &reason); err != nil {
			return nil, err
		}
		e.ID = "le_" + strconv.FormatInt(e.Seq, 10)
		e.At = utc(e.At)
		e.ChargeID, e.Operation, e.MemberID, e.Reason = deref(charge), deref(op), deref(member), deref(reason)
		out = append(out, e)
	}
	return out, rows.Err()
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// DueWorkspaces lists workspaces with a held charge expiring by now.
func (s *Store) DueWorkspaces(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT workspace_id FROM charges WHERE status = 'held' AND expires_at <= $1 LIMIT $2`, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// PlanUsage counts workspaces per plan, current or pending.
func (s *Store) PlanUsage(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT plan, COUNT(*) FROM (SELECT plan FROM workspaces UNION ALL SELECT pending_plan FROM workspaces WHERE pending_plan IS NOT NULL) p GROUP BY plan`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

// DeleteIdempotency drops idempotency keys created before cutoff.
func (s *Store) DeleteIdempotency(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, before)
	if err != nil {
		return 0, err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM ai_requests WHERE created_at < $1`, before); err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// Listen calls fn with the id of every workspace whose balance another
// transaction (of any instance) committed a change to, until ctx ends. It
// reconnects after errors.
func (s *Store) Listen(ctx context.Context, fn func(workspaceID string)) error {
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		_ = err
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (s *Store) listenOnce(ctx context.Context, fn func(string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection is LISTENing: never hand it back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}

// PutSettingIfAbsent stores a setting unless it is set and returns the stored
// value: the first instance's choice wins for all.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM settings WHERE key = $1 LIMIT 1`, key, value).Scan(&v)
	return v, err
}

// CreateAPIKey stores an API key (its secret's hash only).
func (s *Store) CreateAPIKey(ctx context.Context, k auth.APIKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, name, scope, hash, created_at) VALUES ($1, $2, $3, $4, $5)`, k.ID, k.Name, k.Scope, k.Hash, k.CreatedAt)
	return err
}
