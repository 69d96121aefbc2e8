package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// tx is one writer transaction. READ COMMITTED is enough: every statement
// after the advisory locks sees what the lock's previous holder committed.
type tx struct {
	tx    pgx.Tx
	store *Store
	// changed are the workspaces whose balance this transaction changed,
	// announced once it commits.
	changed []string
}

// Begin starts a writer transaction.
func (s *Store) Begin(ctx context.Context) (ledger.Tx, error) {
	t, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &tx{tx: t, store: s}, nil
}

// Commit commits, then announces the changed balances. The NOTIFY is its
// own statement after the commit, not part of the batch's transaction:
// PostgreSQL serializes the commits of transactions that notify, which would
// make every instance's writers commit one at a time. A crash between the two
// costs a stream one update; the next change brings it the newest balance.
func (t *tx) Commit() error {
	if err := t.tx.Commit(context.Background()); err != nil {
		return err
	}
	if len(t.changed) > 0 {
		go t.store.announce(t.changed)
	}
	return nil
}

func (s *Store) announce(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `SELECT pg_notify('`+notifyChannel+`', id) FROM unnest($1::text[]) AS id`, ids)
}
func (t *tx) Rollback() error { return t.tx.Rollback(context.Background()) }

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
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out[a.Workspace.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	return out, br.Close()
}

func (t *tx) Charges(ctx context.Context, ids []string) (map[string]credits.Charge, error) {
	out := make(map[string]credits.Charge, len(ids))
	rows, err := t.tx.Query(ctx, `SELECT c.* FROM unnest($1::text[]) AS k(id) CROSS JOIN LATERAL (SELECT `+chargeCols+` FROM charges WHERE id = k.id) c`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
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
	rows, err := t.tx.Query(ctx, `SELECT c.workspace_id, c.n, c.start_at, c.end_at, c.granted, c.available, c.held, c.used, c.expired
		FROM unnest($1::text[], $2::int[]) AS k(ws, n) CROSS JOIN LATERAL (SELECT * FROM cycles WHERE workspace_id = k.ws AND n = k.n) c`, ws, ns)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var c credits.Cycle
		if err := rows.Scan(&id, &c.N, &c.Start, &c.End, &c.Granted, &c.Available, &c.Held, &c.Used, &c.Expired); err != nil {
			return nil, err
		}
		c.Start, c.End = utc(c.Start), utc(c.End)
		out[ledger.CycleKey{WorkspaceID: id, N: c.N}] = c
	}
	return out, rows.Err()
}

func (t *tx) DueHolds(ctx context.Context, ws string, now time.Time) ([]credits.Charge, time.Time, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+chargeCols+` FROM charges WHERE workspace_id = $1 AND status = 'held' AND expires_at <= $2 ORDER BY expires_at, id`, ws, now)
	b.Queue(`SELECT MIN(expires_at) FROM charges WHERE workspace_id = $1 AND status = 'held' AND expires_at > $2`, ws, now)
	br := t.tx.SendBatch(ctx, b)
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

func (t *tx) Idempotency(ctx context.Context, keys []ledger.IdemKey) (map[ledger.IdemKey]ledger.IdemRecord, error) {
	out := make(map[ledger.IdemKey]ledger.IdemRecord, len(keys))
	ws := make([]string, len(keys))
	ks := make([]string, len(keys))
	for i, k := range keys {
		ws[i], ks[i] = k.WorkspaceID, k.Key
	}
	rows, err := t.tx.Query(ctx, `SELECT i.workspace_id, i.key, i.fingerprint, i.created_at, i.result
		FROM unnest($1::text[], $2::text[]) AS k(ws, key) CROSS JOIN LATERAL (SELECT * FROM idempotency WHERE workspace_id = k.ws AND key = k.key) i`, ws, ks)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
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
	return out, rows.Err()
}

// Write sends every change of the batch in one pipeline: one round trip.
func (t *tx) Write(ctx context.Context, c *ledger.Changes) error {
	b := &pgx.Batch{}
	// Every write below touches rows by key: index lookups are always
	// right, whatever the planner's statistics say (a new table has none,
	// and a hash join would scan all of it, per batch).
	b.Queue(`SET LOCAL enable_hashjoin = off`)
	b.Queue(`SET LOCAL enable_mergejoin = off`)
	for _, a := range c.NewWorkspaces {
		w := a.Workspace
		b.Queue(`INSERT INTO workspaces (id, name, plan, pending_plan, cycle_anchor, created_at, cycle, next_expiry) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			w.ID, w.Name, w.Plan, w.PendingPlan, w.CycleAnchor, w.CreatedAt, a.Cycle.N, nullTime(a.NextExpiry))
	}
	for _, a := range c.Accounts {
		w := a.Workspace
		b.Queue(`UPDATE workspaces SET plan = $1, pending_plan = $2, cycle = $3, next_expiry = $4 WHERE id = $5`,
			w.Plan, w.PendingPlan, a.Cycle.N, nullTime(a.NextExpiry), w.ID)
	}
	// Cycles, charges and keys go as arrays, one statement each: PostgreSQL
	// pays per statement, and a batch has hundreds of rows.
	if n := len(c.Cycles); n > 0 {
		ws := make([]string, n)
		num := make([]int32, n)
		start, end := make([]time.Time, n), make([]time.Time, n)
		granted, avail, held, used, expired := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, r := range c.Cycles {
			cy := r.Cycle
			ws[i], num[i], start[i], end[i] = r.WorkspaceID, int32(cy.N), cy.Start, cy.End
			granted[i], avail[i], held[i], used[i], expired[i] = cy.Granted, cy.Available, cy.Held, cy.Used, cy.Expired
		}
		b.Queue(`INSERT INTO cycles (workspace_id, n, start_at, end_at, granted, available, held, used, expired)
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
		for i, ch := range c.NewCharges {
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
		b.Queue(`INSERT INTO charges (`+chargeCols+`)
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
		b.Queue(`UPDATE charges SET status = u.status, finalized_at = u.fin
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
		b.Queue(`INSERT INTO entries (workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason)
			SELECT ws, cyc, at, typ, amt, after, charge, op, member, reason
			FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[])
			WITH ORDINALITY AS e(ws, cyc, at, typ, amt, after, charge, op, member, reason, i) ORDER BY i`,
			ws, cyc, at, typ, amt, after, charge, op, member, reason)
	}
	if n := len(c.Idempotency); n > 0 {
		ws, key, fp, res := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		created := make([]time.Time, n)
		for i, r := range c.Idempotency {
			data, err := json.Marshal(r.Result)
			if err != nil {
				return err
			}
			ws[i], key[i], fp[i], created[i], res[i] = r.WorkspaceID, r.Key, r.Fingerprint, r.CreatedAt, string(data)
		}
		b.Queue(`INSERT INTO idempotency (workspace_id, key, fingerprint, created_at, result)
			SELECT ws, key, fp, created, res::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS i(ws, key, fp, created, res)
			ON CONFLICT (workspace_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, created_at = excluded.created_at, result = excluded.result`,
			ws, key, fp, created, res)
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
	return t.tx.SendBatch(ctx, b).Close()
}
