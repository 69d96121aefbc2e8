package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// The read side of ledger.Verify: the whole database is read in one read
// transaction (in WAL mode a snapshot: the writer goes on meanwhile; the
// materializer's PASSIVE checkpoints stop at it), each table streamed from
// an open cursor page by page, in index order or sorted by SQLite.

var (
	_ ledger.VerifyStore = (*Store)(nil)
	_ ledger.KeyIndex    = (*snapshot)(nil)
)

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
	snap := &snapshot{tx: tx}
	defer func() {
		// Opened by the first call for them, if any.
		snap.entries.close()
		snap.chargeEntries.close()
		snap.idem.close()
	}()
	return fn(snap)
}

type snapshot struct {
	tx                     *sql.Tx
	entries, chargeEntries *groupCursor[credits.Entry]
	idem                   *groupCursor[ledger.IdemRecord]
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

// scanEntry reads entryCols, then the extra columns after them into extra.
func scanEntry(rows *sql.Rows, extra ...any) (credits.Entry, error) {
	var e credits.Entry
	var at int64
	var charge, op, member, reason sql.NullString
	dest := append([]any{&e.Seq, &e.WorkspaceID, &e.Cycle, &at, &e.Type, &e.Amount, &e.AvailableAfter, &charge, &op, &member, &reason}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return e, err
	}
	e.ID = entryID(e.Seq)
	e.At = fromMicros(at)
	e.ChargeID, e.Operation, e.MemberID, e.Reason = charge.String, op.String, member.String, reason.String
	return e, nil
}

// Entries, ChargeEntries and IdempotencyCharges are served from one sorted
// cursor each over the whole table (neither table has an index by
// workspace: see migrations 6 and 7), which Verify reads workspace by
// workspace in order.
func (w *snapshot) Entries(ctx context.Context, ws string) (ledger.Stream[credits.Entry], error) {
	g, err := openGroup(ctx, w.tx, &w.entries, entryWorkspace, scanEntryRow, `SELECT `+entryCols+` FROM entries ORDER BY workspace_id, seq`)
	if err != nil {
		return nil, err
	}
	return g.group(ws)
}

func (w *snapshot) ChargeEntries(ctx context.Context, ws string) (ledger.Stream[credits.Entry], error) {
	g, err := openGroup(ctx, w.tx, &w.chargeEntries, entryWorkspace, scanEntryRow,
		`SELECT `+entryCols+` FROM entries WHERE charge_id IS NOT NULL ORDER BY workspace_id, charge_id, seq`)
	if err != nil {
		return nil, err
	}
	return g.group(ws)
}

func scanEntryRow(rows *sql.Rows) (credits.Entry, error) { return scanEntry(rows) }

func entryWorkspace(e credits.Entry) string { return e.WorkspaceID }

// groupCursor is one query over a whole table, ordered by workspace, read
// as one stream per workspace in ascending order: a workspace's stream
// skips what is left of earlier ones and ends where the next begins.
type groupCursor[T any] struct {
	rows   *sql.Rows
	scan   func(*sql.Rows) (T, error)
	key    func(T) string
	head   *T     // read, not yet returned
	last   string // the workspace of the latest group
	opened bool
}

// openGroup returns *g, running its query the first time.
func openGroup[T any](ctx context.Context, tx *sql.Tx, g **groupCursor[T], key func(T) string, scan func(*sql.Rows) (T, error), query string) (*groupCursor[T], error) {
	if *g == nil {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return nil, err
		}
		*g = &groupCursor[T]{rows: rows, scan: scan, key: key}
	}
	return *g, nil
}

func (g *groupCursor[T]) group(ws string) (ledger.Stream[T], error) {
	if g.opened && ws <= g.last {
		return nil, fmt.Errorf("sqlite: workspace %q read after %q: a snapshot's streams go in workspace order", ws, g.last)
	}
	g.opened, g.last = true, ws
	return &groupStream[T]{g: g, ws: ws}, nil
}

func (g *groupCursor[T]) close() {
	if g != nil && g.rows != nil {
		g.rows.Close()
	}
}

// peek returns the next row without taking it; nil at the end.
func (g *groupCursor[T]) peek() (*T, error) {
	if g.head != nil {
		return g.head, nil
	}
	if !g.rows.Next() {
		return nil, g.rows.Err()
	}
	x, err := g.scan(g.rows)
	if err != nil {
		return nil, err
	}
	g.head = &x
	return g.head, nil
}

type groupStream[T any] struct {
	g  *groupCursor[T]
	ws string
}

func (s *groupStream[T]) Next(ctx context.Context) ([]T, error) {
	var out []T
	for len(out) < verifyPage {
		x, err := s.g.peek()
		if err != nil {
			return nil, err
		}
		if x == nil {
			break
		}
		k := s.g.key(*x)
		if k > s.ws {
			break
		}
		if k == s.ws {
			out = append(out, *x)
		}
		s.g.head = nil
	}
	return out, ctx.Err()
}

func (s *groupStream[T]) Close() error { return nil }

func (w *snapshot) IdempotencyCharges(ctx context.Context, ws string) (ledger.Stream[ledger.IdemRecord], error) {
	g, err := openGroup(ctx, w.tx, &w.idem, func(r ledger.IdemRecord) string { return r.WorkspaceID }, scanIdemCharge,
		`SELECT workspace_id, key, fingerprint, created_at, answer, charge_id
			FROM idempotency WHERE charge_id IS NOT NULL ORDER BY workspace_id, charge_id, key`)
	if err != nil {
		return nil, err
	}
	return g.group(ws)
}

func scanIdemCharge(rows *sql.Rows) (ledger.IdemRecord, error) {
	var r ledger.IdemRecord
	var created int64
	var answer []byte
	var chargeID string
	if err := rows.Scan(&r.WorkspaceID, &r.Key, &r.Fingerprint, &created, &answer, &chargeID); err != nil {
		return r, err
	}
	r.CreatedAt = fromMicros(created)
	var err error
	if r.Result, err = decodeAnswer(answer); err != nil {
		return r, fmt.Errorf("idempotency key %q: %w", r.Key, err)
	}
	if r.Result.Charge == nil || r.Result.Charge.ID != chargeID {
		return r, fmt.Errorf("idempotency key %q: its answer does not hold charge %s", r.Key, chargeID)
	}
	return r, nil
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

// Orphans is one scan of each table, with the workspace ids in a temporary
// index (SQLite builds one for NOT IN).
func (w *snapshot) Orphans(ctx context.Context) (ledger.Stream[ledger.Orphan], error) {
	scan := func(rows *sql.Rows) (ledger.Orphan, error) {
		var o ledger.Orphan
		err := rows.Scan(&o.WorkspaceID, &o.ID, &o.Cycle)
		return o, err
	}
	return openStream(ctx, w.tx, scan, `SELECT workspace_id, 'le_' || seq, 0 FROM entries WHERE workspace_id NOT IN (SELECT id FROM workspaces)
		UNION ALL SELECT workspace_id, 'cycle ' || n, 1 FROM cycles WHERE workspace_id NOT IN (SELECT id FROM workspaces)`)
}

// UnfindableKeys checks every idempotency row against idempotency_index
// (idemtail.go): a row at or below the index's mark must have its entry
// there, and every row's hash must be its key's, or the lookup misses it.
// (The rows above the mark are found through the tail, which Open reads
// from this table.)
func (w *snapshot) UnfindableKeys(ctx context.Context) (ledger.Stream[ledger.IdemKey], error) {
	rows, err := w.tx.QueryContext(ctx, `SELECT d.workspace_id, d.key, d.hash,
		d.seq <= s.indexed AND NOT EXISTS (SELECT 1 FROM idempotency_index i WHERE i.hash = d.hash AND i.seq = d.seq)
		FROM idempotency d, journal_state s`)
	if err != nil {
		return nil, err
	}
	return &unfindableKeys{rows: rows}, nil
}

type unfindableKeys struct{ rows *sql.Rows }

func (u *unfindableKeys) Next(ctx context.Context) ([]ledger.IdemKey, error) {
	var out []ledger.IdemKey
	for len(out) < verifyPage && u.rows.Next() {
		var k ledger.IdemKey
		var hash int64
		var unindexed bool
		if err := u.rows.Scan(&k.WorkspaceID, &k.Key, &hash, &unindexed); err != nil {
			return nil, err
		}
		if unindexed || hash != idemHash(k.WorkspaceID, k.Key) {
			out = append(out, k)
		}
	}
	if len(out) < verifyPage {
		if err := u.rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, ctx.Err()
}

func (u *unfindableKeys) Close() error { return u.rows.Close() }
