package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// tx is one write transaction on the writer connection (BEGIN IMMEDIATE: it
// holds SQLite's write lock from its start). Every statement is prepared
// once and reused by every batch.
type tx struct {
	tx    *sql.Tx
	stmts *stmtCache
	bound map[string]*sql.Stmt // the statements bound to this transaction
}

// Begin starts the writer's transaction.
func (s *Store) Begin(ctx context.Context) (ledger.Tx, error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &tx{tx: t, stmts: &s.stmts}, nil
}

func (t *tx) Commit() error   { return t.tx.Commit() }
func (t *tx) Rollback() error { return t.tx.Rollback() }

// SingleWriter tells the engine this process is the store's only writer, so
// it may keep what it wrote in memory.
func (s *Store) SingleWriter() bool { return true }

func (t *tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.bound[query]; ok {
		return s, nil
	}
	s, err := t.stmts.get(query)
	if err != nil {
		return nil, err
	}
	b := t.tx.StmtContext(ctx, s)
	if t.bound == nil {
		t.bound = make(map[string]*sql.Stmt, len(writerQueries))
	}
	t.bound[query] = b
	return b, nil
}

func (t *tx) exec(ctx context.Context, query string, args ...any) error {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

const (
	qAccount = `SELECT ` + accountCols + ` FROM workspaces w JOIN cycles c ON c.workspace_id = w.id AND c.n = w.cycle WHERE w.id = ?`
	qCharge  = `SELECT ` + chargeCols + ` FROM charges WHERE id = ?`
	qCycle   = `SELECT n, start_at, end_at, granted, available, held, used, expired FROM cycles WHERE workspace_id = ? AND n = ?`
	// Both walk the charges_held index in expiry order.
	qDue       = `SELECT ` + chargeCols + ` FROM charges INDEXED BY charges_held WHERE status = 'held' AND expires_at <= ? AND workspace_id = ? ORDER BY expires_at, id`
	qNextAfter = `SELECT expires_at FROM charges INDEXED BY charges_held WHERE status = 'held' AND expires_at > ? AND workspace_id = ? ORDER BY expires_at LIMIT 1`
	qIdem      = `SELECT fingerprint, created_at, result FROM idempotency WHERE workspace_id = ? AND key = ?`

	qInsertWorkspace = `INSERT INTO workspaces (id, name, plan, pending_plan, cycle_anchor, created_at, cycle, next_expiry) VALUES (?,?,?,?,?,?,?,?)`
	qUpdateWorkspace = `UPDATE workspaces SET plan = ?, pending_plan = ?, cycle = ?, next_expiry = ? WHERE id = ?`
	qUpsertCycle     = `INSERT INTO cycles (workspace_id, n, start_at, end_at, granted, available, held, used, expired) VALUES (?,?,?,?,?,?,?,?,?)
		ON CONFLICT (workspace_id, n) DO UPDATE SET granted = excluded.granted, available = excluded.available, held = excluded.held, used = excluded.used, expired = excluded.expired`
	qInsertCharge = `INSERT INTO charges (` + chargeCols + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`
	qFinishCharge = `UPDATE charges SET status = ?, finalized_at = ? WHERE id = ?`
	qInsertEntry  = `INSERT INTO entries (workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason) VALUES (?,?,?,?,?,?,?,?,?,?)`
	qUpsertIdem   = `INSERT INTO idempotency (workspace_id, key, fingerprint, created_at, result) VALUES (?,?,?,?,?)
		ON CONFLICT (workspace_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, created_at = excluded.created_at, result = excluded.result`
)

func (t *tx) Accounts(ctx context.Context, ids []string) (map[string]ledger.Account, error) {
	out := make(map[string]ledger.Account, len(ids))
	s, err := t.stmt(ctx, qAccount)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		a, err := scanAccount(s.QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = a
	}
	return out, nil
}

func (t *tx) Charges(ctx context.Context, ids []string) (map[string]credits.Charge, error) {
	out := make(map[string]credits.Charge, len(ids))
	s, err := t.stmt(ctx, qCharge)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		c, err := scanCharge(s.QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, nil
}

func (t *tx) Cycles(ctx context.Context, keys []ledger.CycleKey) (map[ledger.CycleKey]credits.Cycle, error) {
	out := make(map[ledger.CycleKey]credits.Cycle, len(keys))
	s, err := t.stmt(ctx, qCycle)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		var c credits.Cycle
		var start, end int64
		err := s.QueryRowContext(ctx, k.WorkspaceID, k.N).Scan(&c.N, &start, &end, &c.Granted, &c.Available, &c.Held, &c.Used, &c.Expired)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c.Start, c.End = fromMicros(start), fromMicros(end)
		out[k] = c
	}
	return out, nil
}

func (t *tx) DueHolds(ctx context.Context, ws string, now time.Time) ([]credits.Charge, time.Time, error) {
	s, err := t.stmt(ctx, qDue)
	if err != nil {
		return nil, time.Time{}, err
	}
	rows, err := s.QueryContext(ctx, micros(now), ws)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer rows.Close()
	var due []credits.Charge
	for rows.Next() {
		c, err := scanCharge(rows)
		if err != nil {
			return nil, time.Time{}, err
		}
		due = append(due, c)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, err
	}
	n, err := t.stmt(ctx, qNextAfter)
	if err != nil {
		return nil, time.Time{}, err
	}
	var next sql.NullInt64
	if err := n.QueryRowContext(ctx, micros(now), ws).Scan(&next); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, err
	}
	return due, fromMicros(next.Int64), nil
}

func (t *tx) Idempotency(ctx context.Context, keys []ledger.IdemKey) (map[ledger.IdemKey]ledger.IdemRecord, error) {
	out := make(map[ledger.IdemKey]ledger.IdemRecord, len(keys))
	s, err := t.stmt(ctx, qIdem)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		var r ledger.IdemRecord
		var created int64
		var result []byte
		err := s.QueryRowContext(ctx, k.WorkspaceID, k.Key).Scan(&r.Fingerprint, &created, &result)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.WorkspaceID, r.Key, r.CreatedAt = k.WorkspaceID, k.Key, fromMicros(created)
		if err := json.Unmarshal(result, &r.Result); err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, nil
}

func nullString(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func emptyNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (t *tx) Write(ctx context.Context, c *ledger.Changes) error {
	for _, a := range c.NewWorkspaces {
		w := a.Workspace
		if err := t.exec(ctx, qInsertWorkspace, w.ID, w.Name, w.Plan, nullString(w.PendingPlan), micros(w.CycleAnchor), micros(w.CreatedAt), a.Cycle.N, micros(a.NextExpiry)); err != nil {
			return err
		}
	}
	for _, a := range c.Accounts {
		w := a.Workspace
		if err := t.exec(ctx, qUpdateWorkspace, w.Plan, nullString(w.PendingPlan), a.Cycle.N, micros(a.NextExpiry), w.ID); err != nil {
			return err
		}
	}
	for _, r := range c.Cycles {
		cy := r.Cycle
		if err := t.exec(ctx, qUpsertCycle, r.WorkspaceID, cy.N, micros(cy.Start), micros(cy.End), cy.Granted, cy.Available, cy.Held, cy.Used, cy.Expired); err != nil {
			return err
		}
	}
	for _, ch := range c.NewCharges {
		var md any
		if len(ch.Metadata) > 0 {
			b, err := json.Marshal(ch.Metadata)
			if err != nil {
				return err
			}
			md = string(b)
		}
		if err := t.exec(ctx, qInsertCharge, ch.ID, ch.WorkspaceID, ch.Cycle, ch.Operation, ch.Quantity, ch.Cost, ch.Status, nullString(ch.MemberID), md,
			micros(ch.CreatedAt), micros(ch.ExpiresAt), micros(ch.FinalizedAt)); err != nil {
			return err
		}
	}
	for _, ch := range c.Charges {
		if err := t.exec(ctx, qFinishCharge, ch.Status, micros(ch.FinalizedAt), ch.ID); err != nil {
			return err
		}
	}
	if len(c.Entries) > 0 {
		s, err := t.stmt(ctx, qInsertEntry)
		if err != nil {
			return err
		}
		for _, e := range c.Entries {
			if _, err := s.ExecContext(ctx, e.WorkspaceID, e.Cycle, micros(e.At), e.Type, e.Amount, e.AvailableAfter,
				emptyNull(e.ChargeID), emptyNull(e.Operation), emptyNull(e.MemberID), emptyNull(e.Reason)); err != nil {
				return err
			}
		}
	}
	for _, r := range c.Idempotency {
		b, err := json.Marshal(r.Result)
		if err != nil {
			return err
		}
		if err := t.exec(ctx, qUpsertIdem, r.WorkspaceID, r.Key, r.Fingerprint, micros(r.CreatedAt), string(b)); err != nil {
			return err
		}
	}
	return nil
}
