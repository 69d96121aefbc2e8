package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// The read side of ledger.Verify: the whole database is read in one
// REPEATABLE READ, READ ONLY transaction (one snapshot; the instances go on
// writing), each table fetched page by page from a server-side cursor. Ids
// are ordered with COLLATE "C" (byte order), the order the verifier merges
// in.

var _ ledger.VerifyStore = (*Store)(nil)

// verifyPage is how many rows one FETCH returns.
const verifyPage = 500

// ReadSnapshot calls fn with the database as of one moment.
func (s *Store) ReadSnapshot(ctx context.Context, fn func(ledger.Snapshot) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read only
	return fn(&snapshot{tx: tx})
}

type snapshot struct {
	tx      pgx.Tx
	cursors int
}

func (w *snapshot) Workspaces(ctx context.Context) (ledger.Stream[string], error) {
	scan := func(rows pgx.Rows) (string, error) {
		var id string
		return id, rows.Scan(&id)
	}
	return openCursor(ctx, w, scan, `SELECT id FROM workspaces ORDER BY id COLLATE "C"`)
}

func (w *snapshot) Charges(ctx context.Context) (ledger.Stream[credits.Charge], error) {
	scan := func(rows pgx.Rows) (credits.Charge, error) { return scanCharge(rows) }
	return openCursor(ctx, w, scan, `SELECT `+chargeCols+` FROM charges ORDER BY workspace_id COLLATE "C", id COLLATE "C"`)
}

func (w *snapshot) CurrentCycle(ctx context.Context, ws string) (int, error) {
	var n int
	err := w.tx.QueryRow(ctx, `SELECT cycle FROM workspaces WHERE id = $1`, ws).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, credits.NotFound("workspace", ws)
	}
	return n, err
}

func (w *snapshot) Cycles(ctx context.Context, ws string) ([]credits.Cycle, error) {
	rows, err := w.tx.Query(ctx, `SELECT n, start_at, end_at, granted, available, held, used, expired FROM cycles WHERE workspace_id = $1 ORDER BY n`, ws)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (credits.Cycle, error) {
		var c credits.Cycle
		err := row.Scan(&c.N, &c.Start, &c.End, &c.Granted, &c.Available, &c.Held, &c.Used, &c.Expired)
		c.Start, c.End = utc(c.Start), utc(c.End)
		return c, err
	})
}

const entryCols = `seq, workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason`

func scanEntry(row pgx.Rows) (credits.Entry, error) {
	var e credits.Entry
	var charge, op, member, reason *string
	if err := row.Scan(&e.Seq, &e.WorkspaceID, &e.Cycle, &e.At, &e.Type, &e.Amount, &e.AvailableAfter, &charge, &op, &member, &reason); err != nil {
		return e, err
	}
	e.ID = "le_" + strconv.FormatInt(e.Seq, 10)
	e.At = utc(e.At)
	e.ChargeID, e.Operation, e.MemberID, e.Reason = deref(charge), deref(op), deref(member), deref(reason)
	return e, nil
}

func (w *snapshot) Entries(ctx context.Context, ws string) (ledger.Stream[credits.Entry], error) {
	return openCursor(ctx, w, scanEntry, `SELECT `+entryCols+` FROM entries WHERE workspace_id = $1 ORDER BY seq`, ws)
}

func (w *snapshot) ChargeEntries(ctx context.Context, ws string) (ledger.Stream[credits.Entry], error) {
	return openCursor(ctx, w, scanEntry, `SELECT `+entryCols+` FROM entries WHERE workspace_id = $1 AND charge_id IS NOT NULL ORDER BY charge_id COLLATE "C", seq`, ws)
}

func (w *snapshot) IdempotencyCharges(ctx context.Context, ws string) (ledger.Stream[ledger.IdemRecord], error) {
	scan := func(rows pgx.Rows) (ledger.IdemRecord, error) {
		var r ledger.IdemRecord
		var result []byte
		var created time.Time
		var chargeID string
		if err := rows.Scan(&r.WorkspaceID, &r.Key, &r.Fingerprint, &created, &result, &chargeID); err != nil {
			return r, err
		}
		r.CreatedAt = utc(created)
		if err := json.Unmarshal(result, &r.Result); err != nil {
			return r, fmt.Errorf("idempotency key %q: %w", r.Key, err)
		}
		if r.Result.Charge == nil || r.Result.Charge.ID != chargeID {
			return r, fmt.Errorf("idempotency key %q: unreadable answer", r.Key)
		}
		return r, nil
	}
	// The answers are stored as text (migration 6): parsed here only.
	return openCursor(ctx, w, scan, `SELECT workspace_id, key, fingerprint, created_at, result, charge_id FROM (
		SELECT workspace_id, key, fingerprint, created_at, result, result::jsonb->'charge'->>'id' AS charge_id FROM idempotency WHERE workspace_id = $1) i
		WHERE charge_id IS NOT NULL ORDER BY charge_id COLLATE "C", key COLLATE "C"`, ws)
}

// cursor pages through a server-side cursor of the read transaction.
type cursor[T any] struct {
	tx   pgx.Tx
	name string
	scan func(pgx.Rows) (T, error)
	done bool
}

func openCursor[T any](ctx context.Context, w *snapshot, scan func(pgx.Rows) (T, error), query string, args ...any) (ledger.Stream[T], error) {
	w.cursors++
	name := "credits_verify_" + strconv.Itoa(w.cursors)
	if _, err := w.tx.Exec(ctx, `DECLARE `+name+` NO SCROLL CURSOR FOR `+query, args...); err != nil {
		return nil, err
	}
	return &cursor[T]{tx: w.tx, name: name, scan: scan}, nil
}

func (c *cursor[T]) Next(ctx context.Context) ([]T, error) {
	if c.done {
		return nil, nil
	}
	// Described anew each time, not from pgx's statement cache: the cache
	// is per connection and keyed by the text, and "FETCH … FROM
	// credits_verify_7" names a different query (other columns) in each
	// verify of a database with another number of workspaces.
	rows, err := c.tx.Query(ctx, `FETCH FORWARD `+strconv.Itoa(verifyPage)+` FROM `+c.name, pgx.QueryExecModeDescribeExec)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		x, err := c.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.done = len(out) < verifyPage
	return out, nil
}

func (c *cursor[T]) Close() error {
	// The transaction's end closes it anyway; closing early frees it.
	_, err := c.tx.Exec(context.Background(), `CLOSE `+c.name)
	return err
}

// Orphans reads each table once, joined against the workspaces.
func (w *snapshot) Orphans(ctx context.Context) (ledger.Stream[ledger.Orphan], error) {
	scan := func(rows pgx.Rows) (ledger.Orphan, error) {
		var o ledger.Orphan
		err := rows.Scan(&o.WorkspaceID, &o.ID, &o.Cycle)
		return o, err
	}
	return openCursor(ctx, w, scan, `SELECT e.workspace_id, 'le_' || e.seq, false FROM entries e WHERE NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = e.workspace_id)
		UNION ALL SELECT c.workspace_id, 'cycle ' || c.n, true FROM cycles c WHERE NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = c.workspace_id)`)
}
