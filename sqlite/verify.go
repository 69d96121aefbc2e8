package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// The read side of ledger.Verify: the whole database is read in one read
// transaction (in WAL mode a snapshot: the writer goes on meanwhile; the
// checkpointer's PASSIVE checkpoints stop at it), each table streamed from
// an open cursor page by page, in index order or sorted by SQLite.

var _ ledger.VerifyStore = (*Store)(nil)

// verifyPage is how many rows a stream returns at once.
const verifyPage = 500

// ReadSnapshot calls fn with the database as of one moment.
func (s *Store) ReadSnapshot(ctx context.Context, fn func(ledger.Snapshot) error) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read only
	return fn(&snapshot{tx: tx})
}

type snapshot struct {
	tx *sql.Tx
}

func (w *snapshot) Workspaces(ctx context.Context) (ledger.Stream[string], error) {
	scan := func(rows *sql.Rows) (string, error) {
		var id string
		return id, rows.Scan(&id)
	}
	return openStream(ctx, w.tx, scan, `SELECT id FROM workspaces ORDER BY id`)
}

func (w *snapshot) Charges(ctx context.Context) (ledger.Stream[credits.Charge], error) {
	scan := func(rows *sql.Rows) (credits.Charge, error) { return scanCharge(rows) }
	return openStream(ctx, w.tx, scan, `SELECT `+chargeCols+` FROM charges ORDER BY workspace_id, id`)
}

func (w *snapshot) CurrentCycle(ctx context.Context, ws string) (int, error) {
	var n int
	err := w.tx.QueryRowContext(ctx, `SELECT cycle FROM workspaces WHERE id = ?`, ws).Scan(&n)
	if err == sql.ErrNoRows {
		return 0, credits.NotFound("workspace", ws)
	}
	return n, err
}

func (w *snapshot) Cycles(ctx context.Context, ws string) ([]credits.Cycle, error) {
	rows, err := w.tx.QueryContext(ctx, `SELECT n, start_at, end_at, granted, available, held, used, expired FROM cycles WHERE workspace_id = ? ORDER BY n`, ws)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []credits.Cycle
	for rows.Next() {
		var c credits.Cycle
		var start, end int64
		if err := rows.Scan(&c.N, &start, &end, &c.Granted, &c.Available, &c.Held, &c.Used, &c.Expired); err != nil {
			return nil, err
		}
		c.Start, c.End = fromMicros(start), fromMicros(end)
		out = append(out, c)
	}
	return out, rows.Err()
}

const entryCols = `seq, workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason`

func scanEntry(rows *sql.Rows) (credits.Entry, error) {
	var e credits.Entry
	var at int64
	var charge, op, member, reason sql.NullString
	if err := rows.Scan(&e.Seq, &e.WorkspaceID, &e.Cycle, &at, &e.Type, &e.Amount, &e.AvailableAfter, &charge, &op, &member, &reason); err != nil {
		return e, err
	}
	e.ID = entryID(e.Seq)
	e.At = fromMicros(at)
	e.ChargeID, e.Operation, e.MemberID, e.Reason = charge.String, op.String, member.String, reason.String
	return e, nil
}

func (w *snapshot) Entries(ctx context.Context, ws string) (ledger.Stream[credits.Entry], error) {
	return openStream(ctx, w.tx, scanEntry, `SELECT `+entryCols+` FROM entries WHERE workspace_id = ? ORDER BY seq`, ws)
}

func (w *snapshot) ChargeEntries(ctx context.Context, ws string) (ledger.Stream[credits.Entry], error) {
	return openStream(ctx, w.tx, scanEntry, `SELECT `+entryCols+` FROM entries WHERE workspace_id = ? AND charge_id IS NOT NULL ORDER BY charge_id, seq`, ws)
}

func (w *snapshot) IdempotencyCharges(ctx context.Context, ws string) (ledger.Stream[ledger.IdemRecord], error) {
	scan := func(rows *sql.Rows) (ledger.IdemRecord, error) {
		var r ledger.IdemRecord
		var created int64
		var result, chargeID string
		if err := rows.Scan(&r.WorkspaceID, &r.Key, &r.Fingerprint, &created, &result, &chargeID); err != nil {
			return r, err
		}
		r.CreatedAt = fromMicros(created)
		if err := json.Unmarshal([]byte(result), &r.Result); err != nil {
			return r, fmt.Errorf("idempotency key %q: %w", r.Key, err)
		}
		if r.Result.Charge == nil || r.Result.Charge.ID != chargeID {
			return r, fmt.Errorf("idempotency key %q: unreadable answer", r.Key)
		}
		return r, nil
	}
	return openStream(ctx, w.tx, scan, `SELECT workspace_id, key, fingerprint, created_at, result, charge_id FROM (
		SELECT *, json_extract(result, '$.charge.id') AS charge_id FROM idempotency WHERE workspace_id = ?)
		WHERE charge_id IS NOT NULL ORDER BY charge_id, key`, ws)
}

// rowStream pages through an open query.
type rowStream[T any] struct {
	rows *sql.Rows
	scan func(*sql.Rows) (T, error)
}

func openStream[T any](ctx context.Context, tx *sql.Tx, scan func(*sql.Rows) (T, error), query string, args ...any) (ledger.Stream[T], error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return &rowStream[T]{rows: rows, scan: scan}, nil
}

func (s *rowStream[T]) Next(ctx context.Context) ([]T, error) {
	var out []T
	for len(out) < verifyPage && s.rows.Next() {
		x, err := s.scan(s.rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	if len(out) < verifyPage {
		if err := s.rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, ctx.Err()
}

func (s *rowStream[T]) Close() error { return s.rows.Close() }
