package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// tx is one writer transaction. READ COMMITTED is enough: every statement
// after the advisory locks sees what the lock's previous holder committed.
//
// A batch costs PostgreSQL CPU per round trip and per statement, and holds
// its locks for every round trip, so a batch is two: BEGIN, the locks and
// every read (LoadBatch), then the writes and the COMMIT (the engine treats
// a failed Write and a failed Commit alike: the batch fails whole).
type tx struct {
	conn  *pgxpool.Conn
	store *Store
	// begun: BEGIN has been sent; done: the transaction is over and conn
	// released.
	begun, done bool
	// writes are Write's statements, sent with the COMMIT.
	writes *pgx.Batch
	// cycles are the cycle rows read (they exist); idem the keys looked up
	// (true: found).
	cycles map[ledger.CycleKey]bool
	idem   map[ledger.IdemKey]bool
	// changed are the workspaces whose balance this transaction changed,
	// announced once it commits.
	changed []string
	// homes are the new charges' (id, workspace id) pairs, remembered by
	// the store once the transaction commits.
	homes []string
}

// txSettings start every writer transaction. Its statements are key lookups
// and array writes: their plans are made once per connection (generic), and
// with sequential scans, hash and merge joins off they are index lookups
// whatever the statistics say (a new table has none, and a scan of it per
// batch is wrong forever after). Planning every statement for its parameters
// instead cost a third of the server's CPU.
const txSettings = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true),
	set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// Begin starts a writer transaction. Nothing is sent until its first read.
func (s *Store) Begin(ctx context.Context) (ledger.Tx, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &tx{conn: c, store: s}, nil
}

// send sends b in one pipeline, after BEGIN if the transaction has not begun,
// and returns b's results.
func (t *tx) send(ctx context.Context, b *pgx.Batch) (pgx.BatchResults, error) {
	if t.done {
		return nil, errors.New("postgres: the transaction is over")
	}
	skip := 0
	if !t.begun {
		head := &pgx.Batch{}
		head.Queue(`BEGIN`)
		head.Queue(txSettings)
		head.QueuedQueries = append(head.QueuedQueries, b.QueuedQueries...)
		b, skip, t.begun = head, 2, true
	}
	br := t.conn.SendBatch(ctx, b)
	for range skip {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	return br, nil
}

// query sends one statement (after BEGIN, if it is the first) and returns
// its rows; closing br ends the round trip.
func (t *tx) query(ctx context.Context, sql string, args ...any) (pgx.Rows, pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br, err := t.send(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, nil, err
	}
	return rows, br, nil
}

// Commit sends the writes and the COMMIT in one round trip, then announces
// the changed balances. The NOTIFY is not part of the batch's transaction:
// PostgreSQL serializes the commits of transactions that notify, which would
// make every instance's writers commit one at a time. A crash between the two
// costs a stream one update; the next change brings it the newest balance.
func (t *tx) Commit() error {
	if t.done {
		return errors.New("postgres: the transaction is over")
	}
	if !t.begun && t.writes == nil {
		t.release()
		return nil
	}
	b := t.writes
	if b == nil {
		b = &pgx.Batch{}
	}
	n := b.Len()
	b.Queue(`COMMIT`)
	// The commit's outcome is decided by the server once sent; waiting for
	// it is not bounded by the batch's deadline.
	err := t.finish(context.Background(), b, n)
	if err != nil {
		return err
	}
	t.store.homes.put(t.homes)
	if len(t.changed) > 0 {
		t.store.announce(t.changed)
	}
	return nil
}

// finish sends b (n writes, then COMMIT) and releases the connection.
func (t *tx) finish(ctx context.Context, b *pgx.Batch, n int) error {
	br, err := t.send(ctx, b)
	if err == nil {
		for range n {
			if _, err = br.Exec(); err != nil {
				break
			}
		}
		if err == nil {
			var tag pgconn.CommandTag
			if tag, err = br.Exec(); err == nil && tag.String() != "COMMIT" {
				err = pgx.ErrTxCommitRollback
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.rollback()
		return err
	}
	t.release()
	return nil
}

func (t *tx) release() {
	t.done = true
	t.conn.Release()
}

func (t *tx) rollback() {
	if t.conn.Conn().PgConn().TxStatus() != 'I' {
		// A connection left in a transaction is closed by the pool on
		// release; a failed ROLLBACK leaves it so.
		_, _ = t.conn.Exec(context.Background(), `ROLLBACK`)
	}
	t.release()
}

func (t *tx) Rollback() error {
	if !t.done {
		t.rollback()
	}
	return nil
}

// Accounts locks the workspaces (ids sorted by their lock key, so two
// batches always lock in the same order and never deadlock) and reads them.
// The lock is per workspace id, so it also serializes two instances creating
// the same workspace.
func (t *tx) Accounts(ctx context.Context, ids []string) (map[string]ledger.Account, error) {
	out := make(map[string]ledger.Account, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(id, 0) AS k FROM unnest($1::text[]) AS id ORDER BY k) locks`, ids)
	b.Queue(`SELECT a.* FROM unnest($1::text[]) AS k(id) CROSS JOIN LATERAL (
		SELECT `+accountCols+` FROM workspaces w JOIN cycles c ON c.workspace_id = w.id AND c.n = w.cycle WHERE w.id = k.id) a`, ids)
	br, err := t.send(ctx, b)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	if err := t.collectAccounts(rows, out); err != nil {
		return nil, err
	}
	return out, br.Close()
}

// collectAccounts reads accountCols rows into out, noting the cycles read
// (Write updates those and inserts the others).
func (t *tx) collectAccounts(rows pgx.Rows, out map[string]ledger.Account) error {
	defer rows.Close()
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return err
		}
		out[a.Workspace.ID] = a
		t.cycleRead(a.Workspace.ID, a.Cycle.N)
	}
	return rows.Err()
}

func (t *tx) cycleRead(ws string, n int) {
	if t.cycles == nil {
		t.cycles = map[ledger.CycleKey]bool{}
	}
	t.cycles[ledger.CycleKey{WorkspaceID: ws, N: n}] = true
}

// homePairs are the (id, workspace id) pairs of the charges among ids.
func homePairs(chs map[string]credits.Charge, ids []string) []string {
	var pairs []string
	for _, id := range ids {
		if ch, ok := chs[id]; ok {
			pairs = append(pairs, id, ch.WorkspaceID)
		}
	}
	return pairs
}

const chargesSQL = `SELECT c.* FROM unnest($1::text[]) AS k(id) CROSS JOIN LATERAL (SELECT ` + chargeCols + ` FROM charges WHERE id = k.id) c`

// Charges reads charges (the engine reads a batch's with LoadBatch).
func (t *tx) Charges(ctx context.Context, ids []string) (map[string]credits.Charge, error) {
	rows, br, err := t.query(ctx, chargesSQL, ids)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	out, err := collectCharges(rows, len(ids))
	if err != nil {
		return nil, err
	}
	return out, br.Close()
}

func collectCharges(rows pgx.Rows, n int) (map[string]credits.Charge, error) {
	defer rows.Close()
	out := make(map[string]credits.Charge, n)
	for rows.Next() {
		c, err := scanCharge(rows)
		if err != nil {
			return nil, err
		}
		out[c.ID] = c
	}
	return out, rows.Err()
}

func (t *tx) Cycles(ctx context.Context, keys []ledger.CycleKey) (map[ledger.CycleKey]credits.Cycle, error) {
	out := make(map[ledger.CycleKey]credits.Cycle, len(keys))
	ws := make([]string, len(keys))
	ns := make([]int32, len(keys))
	for i, k := range keys {
		ws[i], ns[i] = k.WorkspaceID, int32(k.N)
	}
	rows, br, err := t.query(ctx, `SELECT c.workspace_id, c.n, c.start_at, c.end_at, c.granted, c.available, c.held, c.used, c.expired
		FROM unnest($1::text[], $2::int[]) AS k(ws, n) CROSS JOIN LATERAL (SELECT * FROM cycles WHERE workspace_id = k.ws AND n = k.n) c`, ws, ns)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	defer rows.Close()
	for rows.Next() {
		var id string
		var c credits.Cycle
		if err := rows.Scan(&id, &c.N, &c.Start, &c.End, &c.Granted, &c.Available, &c.Held, &c.Used, &c.Expired); err != nil {
			return nil, err
		}
		c.Start, c.End = utc(c.Start), utc(c.End)
		out[ledger.CycleKey{WorkspaceID: id, N: c.N}] = c
		t.cycleRead(id, c.N)
	}
	return out, rows.Err()
}

func (t *tx) DueHolds(ctx context.Context, ws string, now time.Time) ([]credits.Charge, time.Time, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+chargeCols+` FROM charges WHERE workspace_id = $1 AND status = 'held' AND expires_at <= $2 ORDER BY expires_at, id`, ws, now)
	b.Queue(`SELECT MIN(expires_at) FROM charges WHERE workspace_id = $1 AND status = 'held' AND expires_at > $2`, ws, now)
	br, err := t.send(ctx, b)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, time.Time{}, err
	}
	var due []credits.Charge
	for rows.Next() {
		c, err := scanCharge(rows)
		if err != nil {
			rows.Close()
			return nil, time.Time{}, err
		}
		due = append(due, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, err
	}
	var next *time.Time
	if err := br.QueryRow().Scan(&next); err != nil {
		return nil, time.Time{}, err
	}
	return due, optTime(next), br.Close()
}

const idemSQL = `SELECT i.workspace_id, i.key, i.fingerprint, i.created_at, i.result
	FROM unnest($1::text[], $2::text[]) AS k(ws, key) CROSS JOIN LATERAL (SELECT * FROM idempotency WHERE workspace_id = k.ws AND key = k.key) i`

func idemArgs(keys []ledger.IdemKey) (ws, ks []string) {
	ws, ks = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		ws[i], ks[i] = k.WorkspaceID, k.Key
	}
	return ws, ks
}

func (t *tx) Idempotency(ctx context.Context, keys []ledger.IdemKey) (map[ledger.IdemKey]ledger.IdemRecord, error) {
	ws, ks := idemArgs(keys)
	rows, br, err := t.query(ctx, idemSQL, ws, ks)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	out, err := t.collectIdem(rows, keys)
	if err != nil {
		return nil, err
	}
	return out, br.Close()
}

// collectIdem reads idemSQL's rows, and notes which keys were found (Write
// inserts the others without a conflict clause).
func (t *tx) collectIdem(rows pgx.Rows, keys []ledger.IdemKey) (map[ledger.IdemKey]ledger.IdemRecord, error) {
	defer rows.Close()
	out := make(map[ledger.IdemKey]ledger.IdemRecord, len(keys))
	for rows.Next() {
		var r ledger.IdemRecord
		var result []byte
		if err := rows.Scan(&r.WorkspaceID, &r.Key, &r.Fingerprint, &r.CreatedAt, &result); err != nil {
			return nil, err
		}
		r.CreatedAt = utc(r.CreatedAt)
		if err := json.Unmarshal(result, &r.Result); err != nil {
			return nil, err
		}
		out[ledger.IdemKey{WorkspaceID: r.WorkspaceID, Key: r.Key}] = r
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if t.idem == nil {
		t.idem = make(map[ledger.IdemKey]bool, len(keys))
	}
	for _, k := range keys {
		_, found := out[k]
		t.idem[k] = found
	}
	return out, nil
}

// batchWorkspaces are the workspaces of a LoadBatch: those named ($1) and
// those of the charges named ($2). A charge never changes workspace, so
// reading it before its workspace's lock is safe.
const batchWorkspaces = `SELECT unnest($1::text[]) UNION ALL SELECT ch.workspace_id FROM unnest($2::text[]) AS q(id) JOIN charges ch ON ch.id = q.id`

// LoadBatch sends the locks and every read of a batch in one pipeline
// (with BEGIN, if it is the first): the locks, in Accounts' order; then,
// each statement seeing what the locks' last holders committed, the
// accounts, the charges and the idempotency keys.
func (t *tx) LoadBatch(ctx context.Context, workspaces, charges []string, keys []ledger.IdemKey) (ledger.Loaded, error) {
	out := ledger.Loaded{}
	// The charges whose workspace the store remembers name it; only the
	// others are looked up to find theirs.
	known, unplaced := t.store.homes.place(charges)
	if len(known) > 0 {
		workspaces = append(slices.Clip(workspaces), known...)
	}
	if unplaced == nil {
		unplaced = []string{}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(id, 0) AS k FROM (`+batchWorkspaces+`) AS w(id) ORDER BY k) locks`, workspaces, unplaced)
	b.Queue(`SELECT a.* FROM (SELECT DISTINCT id FROM (`+batchWorkspaces+`) AS w(id)) AS k CROSS JOIN LATERAL (
		SELECT `+accountCols+` FROM workspaces w JOIN cycles c ON c.workspace_id = w.id AND c.n = w.cycle WHERE w.id = k.id) a`, workspaces, unplaced)
	if len(charges) > 0 {
		b.Queue(chargesSQL, charges)
	}
	if len(keys) > 0 {
		ws, ks := idemArgs(keys)
		b.Queue(idemSQL, ws, ks)
	}
	br, err := t.send(ctx, b)
	if err != nil {
		return out, err
	}
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return out, err
	}
	rows, err := br.Query()
	if err != nil {
		return out, err
	}
	out.Accounts = make(map[string]ledger.Account, len(workspaces)+len(charges))
	if err := t.collectAccounts(rows, out.Accounts); err != nil {
		return out, err
	}
	if len(charges) > 0 {
		rows, err := br.Query()
		if err != nil {
			return out, err
		}
		if out.Charges, err = collectCharges(rows, len(charges)); err != nil {
			return out, err
		}
		t.store.homes.put(homePairs(out.Charges, unplaced))
	}
	if len(keys) > 0 {
		rows, err := br.Query()
		if err != nil {
			return out, err
		}
		if out.Idem, err = t.collectIdem(rows, keys); err != nil {
			return out, err
		}
	}
	return out, br.Close()
}

// Write queues every change of the batch; Commit sends them with the COMMIT,
// in one round trip. The rows go as arrays, and all but new workspaces in one
// statement (data-modifying WITH queries): PostgreSQL pays per statement
// (executor start and end, a portal, index and trigger setup), and a batch
// has hundreds of rows. No two parts touch one row, which a statement's
// parts, seeing one snapshot, must not.
func (t *tx) Write(ctx context.Context, c *ledger.Changes) error {
	if t.writes != nil {
		return errors.New("postgres: one Write per transaction")
	}
	b := &pgx.Batch{}
	// New workspaces first, in statements of their own: the rows of the
	// statement below reference them.
	for _, a := range c.NewWorkspaces {
		w := a.Workspace
		b.Queue(`INSERT INTO workspaces (id, name, plan, pending_plan, cycle_anchor, created_at, cycle, next_expiry) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			w.ID, w.Name, w.Plan, w.PendingPlan, w.CycleAnchor, w.CreatedAt, a.Cycle.N, nullTime(a.NextExpiry))
	}
	var w writeStmt
	if n := len(c.Accounts); n > 0 {
		id, plan := make([]string, n), make([]string, n)
		pending := make([]*string, n)
		cyc := make([]int32, n)
		next := make([]*time.Time, n)
		for i, a := range c.Accounts {
			id[i], plan[i], pending[i], cyc[i], next[i] = a.Workspace.ID, a.Workspace.Plan, a.Workspace.PendingPlan, int32(a.Cycle.N), nullTime(a.NextExpiry)
		}
		w.add("workspaces", `UPDATE workspaces SET plan = u.plan, pending_plan = u.pending, cycle = u.cyc, next_expiry = u.next
			FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[]) AS u(id, plan, pending, cyc, next) WHERE workspaces.id = u.id`,
			id, plan, pending, cyc, next)
	}
	// A cycle this transaction read is updated; only a new one (a new
	// workspace's, a reset's) is inserted. An upsert costs an arbiter index
	// probe and a row lock (a WAL record) more per row.
	var upd, ins []ledger.CycleRow
	for _, r := range c.Cycles {
		if t.cycles[ledger.CycleKey{WorkspaceID: r.WorkspaceID, N: r.Cycle.N}] {
			upd = append(upd, r)
		} else {
			ins = append(ins, r)
		}
	}
	if n := len(upd); n > 0 {
		ws := make([]string, n)
		num := make([]int32, n)
		granted, avail, held, used, expired := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, r := range upd {
			cy := r.Cycle
			ws[i], num[i] = r.WorkspaceID, int32(cy.N)
			granted[i], avail[i], held[i], used[i], expired[i] = cy.Granted, cy.Available, cy.Held, cy.Used, cy.Expired
		}
		w.add("cycles", `UPDATE cycles SET granted = u.granted, available = u.available, held = u.held, used = u.used, expired = u.expired
			FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(ws, n, granted, available, held, used, expired)
			WHERE cycles.workspace_id = u.ws AND cycles.n = u.n`,
			ws, num, granted, avail, held, used, expired)
	}
	if n := len(ins); n > 0 {
		ws := make([]string, n)
		num := make([]int32, n)
		start, end := make([]time.Time, n), make([]time.Time, n)
		granted, avail, held, used, expired := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, r := range ins {
			cy := r.Cycle
			ws[i], num[i], start[i], end[i] = r.WorkspaceID, int32(cy.N), cy.Start, cy.End
			granted[i], avail[i], held[i], used[i], expired[i] = cy.Granted, cy.Available, cy.Held, cy.Used, cy.Expired
		}
		w.add("newcycles", `INSERT INTO cycles (workspace_id, n, start_at, end_at, granted, available, held, used, expired)
			SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::timestamptz[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
			ON CONFLICT (workspace_id, n) DO UPDATE SET granted = excluded.granted, available = excluded.available, held = excluded.held, used = excluded.used, expired = excluded.expired`,
			ws, num, start, end, granted, avail, held, used, expired)
	}
	if n := len(c.NewCharges); n > 0 {
		id, ws, op, status := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		cyc := make([]int32, n)
		qty, cost := make([]int64, n), make([]int64, n)
		member, md := make([]*string, n), make([]*string, n)
		created, expires := make([]time.Time, n), make([]time.Time, n)
		fin := make([]*time.Time, n)
		t.homes = make([]string, 0, 2*n)
		for i, ch := range c.NewCharges {
			t.homes = append(t.homes, ch.ID, ch.WorkspaceID)
			id[i], ws[i], cyc[i], op[i], qty[i], cost[i], status[i] = ch.ID, ch.WorkspaceID, int32(ch.Cycle), ch.Operation, ch.Quantity, ch.Cost, ch.Status
			member[i], created[i], expires[i], fin[i] = ch.MemberID, ch.CreatedAt, ch.ExpiresAt, nullTime(ch.FinalizedAt)
			if len(ch.Metadata) > 0 {
				data, err := json.Marshal(ch.Metadata)
				if err != nil {
					return err
				}
				s := string(data)
				md[i] = &s
			}
		}
		w.add("charges", `INSERT INTO charges (`+chargeCols+`)
			SELECT id, ws, cyc, op, qty, cost, status, member, md::jsonb, created, expires, fin
			FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
			AS c(id, ws, cyc, op, qty, cost, status, member, md, created, expires, fin)`,
			id, ws, cyc, op, qty, cost, status, member, md, created, expires, fin)
	}
	if n := len(c.Charges); n > 0 {
		id, status := make([]string, n), make([]string, n)
		fin := make([]*time.Time, n)
		for i, ch := range c.Charges {
			id[i], status[i], fin[i] = ch.ID, ch.Status, nullTime(ch.FinalizedAt)
		}
		w.add("finished", `UPDATE charges SET status = u.status, finalized_at = u.fin
			FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id, status, fin) WHERE charges.id = u.id`, id, status, fin)
	}
	if n := len(c.Entries); n > 0 {
		ws, typ := make([]string, n), make([]string, n)
		cyc := make([]int32, n)
		at := make([]time.Time, n)
		amt, after := make([]int64, n), make([]int64, n)
		charge, op, member, reason := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		for i, e := range c.Entries {
			ws[i], cyc[i], at[i], typ[i], amt[i], after[i] = e.WorkspaceID, int32(e.Cycle), e.At, e.Type, e.Amount, e.AvailableAfter
			charge[i], op[i], member[i], reason[i] = nullText(e.ChargeID), nullText(e.Operation), nullText(e.MemberID), nullText(e.Reason)
		}
		// WITH ORDINALITY keeps the batch's order in seq.
		w.add("entries", `INSERT INTO entries (workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason)
			SELECT ws, cyc, at, typ, amt, after, charge, op, member, reason
			FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[])
			WITH ORDINALITY AS e(ws, cyc, at, typ, amt, after, charge, op, member, reason, i) ORDER BY i`,
			ws, cyc, at, typ, amt, after, charge, op, member, reason)
	}
	// A key this transaction looked up and did not find is inserted: no
	// one else writes it while the workspace's lock is held (if one did,
	// the unique index fails the batch). Others are upserted.
	var fresh, replace []ledger.IdemRecord
	for _, r := range c.Idempotency {
		if found, looked := t.idem[ledger.IdemKey{WorkspaceID: r.WorkspaceID, Key: r.Key}]; looked && !found {
			fresh = append(fresh, r)
		} else {
			replace = append(replace, r)
		}
	}
	for i, recs := range [2][]ledger.IdemRecord{fresh, replace} {
		n := len(recs)
		if n == 0 {
			continue
		}
		ws, key, fp, res := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		created := make([]time.Time, n)
		for j, r := range recs {
			data, err := json.Marshal(r.Result)
			if err != nil {
				return err
			}
			ws[j], key[j], fp[j], created[j], res[j] = r.WorkspaceID, r.Key, r.Fingerprint, r.CreatedAt, string(data)
		}
		q := `INSERT INTO idempotency (workspace_id, key, fingerprint, created_at, result)
			SELECT ws, key, fp, created, res FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS i(ws, key, fp, created, res)`
		if i == 1 {
			q += `
			ON CONFLICT (workspace_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, created_at = excluded.created_at, result = excluded.result`
		}
		w.add([2]string{"keys", "rekeys"}[i], q, ws, key, fp, created, res)
	}
	if sql, args := w.statement(); sql != "" {
		b.Queue(sql, args...)
	}
	// The balances to announce after the commit.
	var changed []string
	seen := map[string]bool{}
	for _, r := range c.Cycles { // every changed balance writes its cycle
		if !seen[r.WorkspaceID] {
			seen[r.WorkspaceID] = true
			changed = append(changed, r.WorkspaceID)
		}
	}
	t.changed = changed
	t.writes = b
	return nil
}

// writeStmt joins writes into one statement.
type writeStmt struct {
	parts []string
	nargs []int
	args  []any
	// shape names the parts present, in order: the key of the joined
	// statement's text in joinedSQL.
	shape string
}

var (
	placeholder = regexp.MustCompile(`\$([0-9]+)`)
	joinedSQL   sync.Map // shape -> statement text
)

// add adds a write whose parameters are $1...$len(args). name names sql.
func (w *writeStmt) add(name, sql string, args ...any) {
	w.parts = append(w.parts, sql)
	w.nargs = append(w.nargs, len(args))
	w.args = append(w.args, args...)
	w.shape += name + " "
}

// statement returns the writes as one statement ("" if none).
func (w *writeStmt) statement() (string, []any) {
	switch len(w.parts) {
	case 0:
		return "", nil
	case 1:
		return w.parts[0], w.args
	}
	if sql, ok := joinedSQL.Load(w.shape); ok {
		return sql.(string), w.args
	}
	var sb strings.Builder
	base := 0
	for i, p := range w.parts {
		if i == 0 {
			sb.WriteString("WITH ")
		} else {
			sb.WriteString(",\n")
		}
		p = placeholder.ReplaceAllStringFunc(p, func(m string) string {
			n, _ := strconv.Atoi(m[1:])
			return "$" + strconv.Itoa(base+n)
		})
		base += w.nargs[i]
		fmt.Fprintf(&sb, "w%d AS (%s)", i, p)
	}
	sb.WriteString("\nSELECT 1")
	joinedSQL.Store(w.shape, sb.String())
	return sb.String(), w.args
}
