package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// tx is one batch of the engine's writer. Its reads look at the overlay and
// then the tables; its writes become one journal record, appended and
// synced at Commit. No SQLite transaction is held: the tables are written
// later, by the materializer.
type tx struct {
	s       *Store
	rec     *record
	payload []byte
	nextSeq int64
}

// Begin starts a batch. It waits while the tables are too far behind the
// journal, which bounds the overlay's memory.
func (s *Store) Begin(ctx context.Context) (ledger.Tx, error) {
	if err := s.mat.waitRoom(ctx); err != nil {
		return nil, err
	}
	return &tx{s: s}, nil
}

// Rollback drops a batch that was not committed: nothing of it was written.
func (t *tx) Rollback() error {
	t.rec = nil
	return nil
}

// Commit appends the batch to the journal and syncs it; when it returns
// nil the batch is durable, and readers see it.
func (t *tx) Commit() error {
	if t.rec == nil {
		return nil
	}
	s := t.s
	if err := s.j.append(t.rec.Batch, t.payload); err != nil {
		return err
	}
	s.batch, s.nextSeq = t.rec.Batch, t.nextSeq
	for _, r := range t.rec.Changes.Idempotency {
		s.idem.add(r.WorkspaceID, r.Key)
	}
	s.ov.add(t.rec.Batch, t.rec.Changes)
	s.mat.push(t.rec)
	t.rec = nil
	return nil
}

// SingleWriter tells the engine this process is the store's only writer, so
// it may keep what it wrote in memory.
func (s *Store) SingleWriter() bool { return true }

const (
	qAccount = `SELECT ` + accountCols + ` FROM workspaces w JOIN cycles c ON c.workspace_id = w.id AND c.n = w.cycle WHERE w.id = ?`
	qCharge  = `SELECT ` + chargeCols + ` FROM charges WHERE id = ?`
	qCycle   = `SELECT n, start_at, end_at, granted, available, held, used, expired FROM cycles WHERE workspace_id = ? AND n = ?`
	// Both walk the charges_held index in expiry order.
	qDue       = `SELECT ` + chargeCols + ` FROM charges INDEXED BY charges_held WHERE status = 'held' AND expires_at <= ? AND workspace_id = ? ORDER BY expires_at, id`
	qNextAfter = `SELECT expires_at FROM charges INDEXED BY charges_held WHERE status = 'held' AND expires_at > ? AND workspace_id = ? ORDER BY expires_at LIMIT 1`
	// A key in the index (the tail's are looked up by seq). The newest
	// row wins: a key used again after its lifetime is a new row.
	qIdem = `SELECT d.fingerprint, d.created_at, d.answer FROM idempotency_index i CROSS JOIN idempotency d ON d.seq = i.seq
		WHERE i.hash = ? AND d.workspace_id = ? AND d.key = ? ORDER BY i.seq DESC LIMIT 1`
	qIdemSeq = `SELECT workspace_id, key, fingerprint, created_at, answer FROM idempotency WHERE seq = ?`
)

// account reads a workspace and its current cycle: the overlay first, the
// tables second (see overlay.go for why in that order).
func (s *Store) account(ctx context.Context, id string) (ledger.Account, bool, error) {
	v := s.ov.workspace(id)
	if v.row != nil {
		a := ledger.Account{Workspace: v.row.ws, NextExpiry: v.row.nextExpiry}
		if c, ok := v.cycles[v.row.cycle]; ok {
			a.Cycle = c
			return a, true, nil
		}
		c, ok, err := s.tableCycle(ctx, ledger.CycleKey{WorkspaceID: id, N: v.row.cycle})
		if err != nil {
			return a, false, err
		}
		if !ok {
			return a, false, fmt.Errorf("sqlite: workspace %s: its cycle %d is missing", id, v.row.cycle)
		}
		a.Cycle = c
		return a, true, nil
	}
	a, err := scanAccount(s.reads.m[qAccount].QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, err
	}
	if c, ok := v.cycles[a.Cycle.N]; ok {
		a.Cycle = c
	}
	return a, true, nil
}

func (s *Store) tableCycle(ctx context.Context, k ledger.CycleKey) (credits.Cycle, bool, error) {
	var c credits.Cycle
	var start, end int64
	err := s.reads.m[qCycle].QueryRowContext(ctx, k.WorkspaceID, k.N).Scan(&c.N, &start, &end, &c.Granted, &c.Available, &c.Held, &c.Used, &c.Expired)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	c.Start, c.End = fromMicros(start), fromMicros(end)
	return c, true, nil
}

func (s *Store) charge(ctx context.Context, id string) (credits.Charge, bool, error) {
	if c, ok := s.ov.charge(id); ok {
		return c, true, nil
	}
	c, err := scanCharge(s.reads.m[qCharge].QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

func (t *tx) Accounts(ctx context.Context, ids []string) (map[string]ledger.Account, error) {
	out := make(map[string]ledger.Account, len(ids))
	for _, id := range ids {
		a, ok, err := t.s.account(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = a
		}
	}
	return out, nil
}

func (t *tx) Charges(ctx context.Context, ids []string) (map[string]credits.Charge, error) {
	out := make(map[string]credits.Charge, len(ids))
	for _, id := range ids {
		c, ok, err := t.s.charge(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = c
		}
	}
	return out, nil
}

func (t *tx) Cycles(ctx context.Context, keys []ledger.CycleKey) (map[ledger.CycleKey]credits.Cycle, error) {
	out := make(map[ledger.CycleKey]credits.Cycle, len(keys))
	for _, k := range keys {
		if c, ok := t.s.ov.cycle(k); ok {
			out[k] = c
			continue
		}
		c, ok, err := t.s.tableCycle(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = c
		}
	}
	return out, nil
}

func (t *tx) DueHolds(ctx context.Context, ws string, now time.Time) ([]credits.Charge, time.Time, error) {
	pending := t.s.ov.charges(ws)
	rows, err := t.s.reads.m[qDue].QueryContext(ctx, micros(now), ws)
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
		if _, newer := pending[c.ID]; !newer {
			due = append(due, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, err
	}
	var next sql.NullInt64
	if err := t.s.reads.m[qNextAfter].QueryRowContext(ctx, micros(now), ws).Scan(&next); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, err
	}
	// The table's next may be a charge the overlay has finished: an early
	// value, which only costs an extra look later.
	nextAt := fromMicros(next.Int64)
	for _, c := range pending {
		if c.Status != credits.StatusHeld {
			continue
		}
		if !c.ExpiresAt.After(now) {
			due = append(due, c)
		} else if nextAt.IsZero() || c.ExpiresAt.Before(nextAt) {
			nextAt = c.ExpiresAt
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].ExpiresAt.Equal(due[j].ExpiresAt) {
			return due[i].ExpiresAt.Before(due[j].ExpiresAt)
		}
		return due[i].ID < due[j].ID
	})
	return due, nextAt, nil
}

func (t *tx) Idempotency(ctx context.Context, keys []ledger.IdemKey) (map[ledger.IdemKey]ledger.IdemRecord, error) {
	out := make(map[ledger.IdemKey]ledger.IdemRecord, len(keys))
	st := t.s.reads.m[qIdem]
	for _, k := range keys {
		if !t.s.idem.mayContain(k.WorkspaceID, k.Key) {
			continue // never stored (the overlay's keys are in the filter too)
		}
		// The overlay, the tail, the index: in that order (idemtail.go).
		if r, ok := t.s.ov.idem(k); ok {
			out[k] = r
			continue
		}
		h := idemHash(k.WorkspaceID, k.Key)
		row, ok, err := t.s.tailIdem(ctx, k, h)
		if err == nil && !ok {
			err = st.QueryRowContext(ctx, h, k.WorkspaceID, k.Key).Scan(&row.fingerprint, &row.created, &row.answer)
			ok = err == nil
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		r := ledger.IdemRecord{WorkspaceID: k.WorkspaceID, Key: k.Key, Fingerprint: row.fingerprint, CreatedAt: fromMicros(row.created)}
		if r.Result, err = decodeAnswer(row.answer); err != nil {
			return nil, fmt.Errorf("idempotency key %q: %w", k.Key, err)
		}
		out[k] = r
	}
	return out, nil
}

// storedIdem is an idempotency row as a lookup reads it.
type storedIdem struct {
	fingerprint string
	created     int64
	answer      []byte
}

// tailIdem finds key k (of hash h) among the rows above the index's mark.
func (s *Store) tailIdem(ctx context.Context, k ledger.IdemKey, h int64) (storedIdem, bool, error) {
	var buf [4]int64
	for _, seq := range s.tail.lookup(buf[:0], h) {
		var ws, key string
		var row storedIdem
		err := s.reads.m[qIdemSeq].QueryRowContext(ctx, seq).Scan(&ws, &key, &row.fingerprint, &row.created, &row.answer)
		if errors.Is(err, sql.ErrNoRows) {
			continue // swept since
		}
		if err != nil {
			return storedIdem{}, false, err
		}
		if ws == k.WorkspaceID && key == k.Key {
			return row, true, nil
		}
		// another key of the same hash
	}
	return storedIdem{}, false, nil
}

func emptyNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Write numbers the batch's ledger entries and encodes the batch as one
// journal record; Commit writes it.
func (t *tx) Write(ctx context.Context, c *ledger.Changes) error {
	s := t.s
	seq := s.nextSeq
	for i := range c.Entries {
		c.Entries[i].Seq = seq
		c.Entries[i].ID = entryID(seq)
		seq++
	}
	// The answers share one buffer, sized for a hold's (about 115 bytes):
	// one allocation a batch instead of one per doubling of each answer.
	// They live as long as the record, until the tables hold it.
	results := make([][]byte, len(c.Idempotency))
	buf := make([]byte, 0, answerBytes*len(c.Idempotency))
	for i := range c.Idempotency {
		start := len(buf)
		var err error
		if buf, err = appendAnswer(buf, &c.Idempotency[i].Result); err != nil {
			return err
		}
		results[i] = buf[start:len(buf):len(buf)]
	}
	t.rec = &record{Batch: s.batch + 1, Changes: c, Results: results}
	t.nextSeq = seq
	s.encBuf = appendRecord(s.encBuf[:0], t.rec)
	t.payload = s.encBuf
	return nil
}
