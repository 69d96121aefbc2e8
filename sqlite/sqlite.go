// Package sqlite is the embedded store: a journal (redo log) of committed
// batches in front of one SQLite file. The process is the only writer. A
// batch is acknowledged once its journal record is synced (journal.go); the
// materializer then copies batches into the tables, many per transaction,
// in WAL mode with synchronous=FULL (materialize.go). Until it has, reads
// find the batch's rows in the overlay (overlay.go). Open replays what the
// tables do not hold yet.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/ledger"
)

var (
	//go:embed schema.sql
	schemaV1 string
	//go:embed schema_2_ai.sql
	schemaV2 string
	//go:embed schema_4_journal.sql
	schemaV4 string
	//go:embed schema_5_idempotency_append.sql
	schemaV5 string
	//go:embed schema_6_ledger_chain.sql
	schemaV6 string
	//go:embed schema_7_idempotency_hash.sql
	schemaV7 string
	//go:embed schema_8_idempotency_index.sql
	schemaV8 string
)

// A migration is SQL, and sometimes Go that finishes it in the same
// transaction.
type migration struct {
	sql  string
	then func(ctx context.Context, tx *sql.Tx) error
}

// migrations are applied in order; each runs once, in its own transaction.
var migrations = []migration{{sql: schemaV1}, {sql: schemaV2}, {sql: schemaV3}, {sql: schemaV4}, {sql: schemaV5}, {sql: schemaV6},
	{sql: schemaV7, then: fillIdemHashes}, {sql: schemaV8}}

// Store is the SQLite store. It implements ledger.Store and auth.Store.
type Store struct {
	w     *sql.DB // the AI and auth records' writer connection (and the migrations')
	r     *sql.DB // readers
	path  string
	lite  *liteConn // the materializer's connection
	reads stmtCache // the engine's lookups, on r

	lock *os.File // held while open: one process owns the journal
	j    *journal
	ov   *overlay
	mat  *materializer
	// The engine's writer owns these (one goroutine).
	batch   uint64 // the last batch journaled
	nextSeq int64  // the next ledger entry's seq
	// heads is the materializer's copy of ledger_heads (each workspace's
	// newest entry in the tables), so a window's chains are linked
	// without a read. Only materialize, which never runs twice at once,
	// uses it.
	heads    map[string]int64
	merged   merged   // materialize's, refilled for each window
	bulkArgs liteArgs // materialize's: at most 256 rows' values
	encBuf   []byte
	idem     *idemFilter
	// idemSeq is the newest idempotency row's seq, and tail finds the rows
	// above journal_state.indexed (idemtail.go). Only materialize, and
	// Open before it runs, change them.
	idemSeq int64
	indexed int64
	tail    *idemTail
	tailMax int
	tailNew []tailKey // materialize's, refilled for each window
	// The materializer's checkpoints (checkpoint.go): the last one, whether
	// a window committed since (atomic only for tests, which call
	// materialize beside the idle materializer), how often under load.
	checkpointed    time.Time
	walDirty        atomic.Bool
	checkpointEvery time.Duration

	closeOnce sync.Once
	closeErr  error
}

var (
	_ ledger.Store = (*Store)(nil)
	_ auth.Store   = (*Store)(nil)
)

// commonPragmas are every connection's.
var commonPragmas = []string{
	// 8 KiB pages: a batch's appends (charges, entries, keys) dirty fewer
	// pages, so its commit writes fewer WAL frames; measured faster than 4
	// and 16 KiB with BenchmarkPairs. It applies to new files only.
	"page_size(8192)",
	"journal_mode(WAL)",
	// FULL: in WAL mode every commit syncs the WAL. Charges are durable
	// in the journal before the tables see them; the materializer's
	// commits are synced so that a journal file can be deleted once the
	// tables hold its batches.
	"synchronous(FULL)",
	"busy_timeout(10000)",
}

// writerPragmas are the two connections' that write: the materializer's
// (liteConn) and w's, the AI and auth records'.
var writerPragmas = append(slices.Clip(commonPragmas),
	// No foreign-key checks where rows are written: the cycles, charges
	// and ledger entries that name a workspace are written only by the
	// materializer, from batches the engine made for a workspace it had
	// read, and checking it cost a lookup of the workspace per row
	// (BenchmarkMaterialize 19.6, 20.0 and 18.9 µs a pair without, against
	// 21.8, 21.6 and 22.5 with, in turn); an AI record may name a
	// workspace the tables do not hold yet (it is in the journal). credits
	// verify checks that every such row has its workspace
	// (Snapshot.Orphans and the charges without one); the schema keeps its
	// REFERENCES for the sqlite3 shell and any tool that asks.
	"foreign_keys(0)",
	// 8 MiB of page cache for the materializer: it writes all over the
	// tables, and a page it must read back from the file costs a system
	// call. (w reads and writes few pages: its cache fills only as far.)
	"cache_size(-8192)",
	// A multi-row statement keeps the pages it changes in a statement
	// journal, to undo itself alone if a row fails: in memory, not in a
	// temporary file written with a system call per page.
	"temp_store(MEMORY)",
	// No checkpoint on commit: the materializer checkpoints between its
	// windows (checkpoint.go), and w's commits never wait for one.
	"wal_autocheckpoint(0)",
	// When the WAL starts over, a file a burst grew past 64 MiB is cut
	// back to it (under steady load it holds a checkpoint interval's
	// frames: 16-17 MB at most in credits bench's rows).
	"journal_size_limit(67108864)",
)

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	if readOnly {
		for _, p := range commonPragmas {
			q.Add("_pragma", p)
		}
		q.Add("_pragma", "query_only(1)")
	} else {
		for _, p := range writerPragmas {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path and applies the
// schema migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite: %q: give a plain file path", path)
	}
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{w: w, path: path, heads: map[string]int64{}, tailMax: idemTailMax, checkpointEvery: checkpointInterval}
	// The lock sits beside the database, not in the journal's folder,
	// which Open may empty.
	if s.lock, err = lockFile(path + ".lock"); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := s.openWriter(ctx); err != nil {
		s.lite.close() // nil when it did not open
		w.Close()
		s.lock.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	fail := func(err error) (*Store, error) {
		s.j.close(false)
		if s.r != nil {
			s.r.Close()
		}
		s.lite.close()
		w.Close()
		s.lock.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return fail(err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s.r = r
	if err := s.reads.prepare(ctx, r, readQueries); err != nil {
		return fail(err)
	}
	go s.runMaterializer()
	return s, nil
}

// openWriter migrates the schema, replays the journal into the tables and
// starts a new journal.
func (s *Store) openWriter(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	lite, err := openLite(s.path, writerPragmas)
	if err != nil {
		return err
	}
	s.lite = lite
	if err := s.lite.prepare(materializeQueries); err != nil {
		return err
	}
	var materialized uint64
	if err := s.w.QueryRowContext(ctx, `SELECT materialized, indexed FROM journal_state`).Scan(&materialized, &s.indexed); err != nil {
		return err
	}
	if err := s.loadIdemTail(ctx); err != nil {
		return err
	}
	last, err := s.replay(ctx, materialized)
	if err != nil {
		return fmt.Errorf("replaying the journal: %w", err)
	}
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM entries`).Scan(&s.nextSeq); err != nil {
		return err
	}
	if s.idem, err = s.loadIdemFilter(ctx); err != nil {
		return err
	}
	s.batch = last
	s.ov = newOverlay()
	s.mat = newMaterializer(last)
	s.j, err = openJournal(journalDir(s.path), last+1)
	return err
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	var have int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("the database has schema version %d, newer than this binary's %d", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		m := migrations[v-1]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if m.then != nil {
			if err := m.then(ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixMicro()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close copies what the journal holds into the tables and closes the
// database. (If the tables refuse it, the journal keeps it for the next
// Open.)
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	close(s.mat.stop)
	<-s.mat.exited
	s.mat.mu.Lock()
	all := s.mat.done == s.mat.queued
	s.mat.mu.Unlock()
	jerr := s.j.close(all)
	if err := s.lite.exec(context.Background(), qCheckpointTruncate); err != nil {
		slog.Warn("sqlite: checkpointing the WAL at close failed; the next open reads it", "err", err)
	}
	if e := s.lite.close(); jerr == nil {
		jerr = e
	}
	s.reads.close()
	err := s.r.Close()
	if e := s.w.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = jerr
	}
	s.lock.Close()
	return err
}

// Flush waits until the tables hold every batch committed before the call.
func (s *Store) Flush(ctx context.Context) error { return s.mat.wait(ctx) }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// DB is the writer connection, for tools (backup, verify) and tests that
// need to look underneath. The tables are brought up to date first.
func (s *Store) DB() *sql.DB {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.Flush(ctx) // an error here is the materializer's, and logged there
	return s.w
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const accountCols = `w.id, w.name, w.plan, w.pending_plan, w.cycle_anchor, w.created_at, w.next_expiry,
  c.n, c.start_at, c.end_at, c.granted, c.available, c.held, c.used, c.expired`

func scanAccount(sc interface{ Scan(...any) error }) (ledger.Account, error) {
	var a ledger.Account
	var pending sql.NullString
	var anchor, created, next, start, end int64
	err := sc.Scan(&a.Workspace.ID, &a.Workspace.Name, &a.Workspace.Plan, &pending, &anchor, &created, &next,
		&a.Cycle.N, &start, &end, &a.Cycle.Granted, &a.Cycle.Available, &a.Cycle.Held, &a.Cycle.Used, &a.Cycle.Expired)
	if err != nil {
		return a, err
	}
	if pending.Valid {
		p := pending.String
		a.Workspace.PendingPlan = &p
	}
	a.Workspace.CycleAnchor, a.Workspace.CreatedAt, a.NextExpiry = fromMicros(anchor), fromMicros(created), fromMicros(next)
	a.Cycle.Start, a.Cycle.End = fromMicros(start), fromMicros(end)
	return a, nil
}

const chargeCols = `id, workspace_id, cycle, operation, quantity, cost, status, member_id, metadata, created_at, expires_at, finalized_at`

func scanCharge(sc interface{ Scan(...any) error }) (credits.Charge, error) {
	var c credits.Charge
	var member, md sql.NullString
	var created, expires, fin int64
	if err := sc.Scan(&c.ID, &c.WorkspaceID, &c.Cycle, &c.Operation, &c.Quantity, &c.Cost, &c.Status, &member, &md, &created, &expires, &fin); err != nil {
		return c, err
	}
	if member.Valid {
		m := member.String
		c.MemberID = &m
	}
	if md.Valid && md.String != "" {
		if err := json.Unmarshal([]byte(md.String), &c.Metadata); err != nil {
			return c, fmt.Errorf("charge %s: metadata: %w", c.ID, err)
		}
	}
	c.CreatedAt, c.ExpiresAt, c.FinalizedAt = fromMicros(created), fromMicros(expires), fromMicros(fin)
	return c, nil
}

// Account reads a workspace and its current cycle.
func (s *Store) Account(ctx context.Context, id string) (ledger.Account, error) {
	a, ok, err := s.account(ctx, id)
	if err == nil && !ok {
		return a, credits.NotFound("workspace", id)
	}
	return a, err
}

// Charge reads a charge.
func (s *Store) Charge(ctx context.Context, id string) (credits.Charge, error) {
	c, ok, err := s.charge(ctx, id)
	if err == nil && !ok {
		return c, credits.NotFound("charge", id)
	}
	return c, err
}

// OnJournalSync has fn told how long each batch's journal write and
// fdatasync took, on the writer's goroutine (nil: no more). The wait a
// caller cannot avoid: credits bench reports it.
func (s *Store) OnJournalSync(fn func(time.Duration)) {
	if fn == nil {
		s.j.onSync.Store(nil)
		return
	}
	s.j.onSync.Store(&fn)
}

// Entries reads a page of a workspace's ledger, newest first: the
// overlay's entries, then the tables' older ones, following the
// workspace's chain (each entry names the one before it) from its head or
// from the cursor's entry.
func (s *Store) Entries(ctx context.Context, ws string, before int64, limit int) ([]credits.Entry, error) {
	// Where the tables' part of the page starts: -1 for the workspace's
	// head. Every entry in the tables is older than every entry in the
	// overlay, so after overlay entries, or from a cursor naming one, it
	// is the head.
	start := int64(-1)
	if before <= 0 {
		before = 1<<63 - 1
	} else if !s.ov.hasEntry(ws, before) {
		// The cursor's entry is in the tables (a row leaves the overlay
		// only after they hold it), and the page goes on from the entry
		// before it.
		var owner string
		err := s.r.QueryRowContext(ctx, `SELECT workspace_id, prev_seq FROM entries WHERE seq = ?`, before).Scan(&owner, &start)
		if err == sql.ErrNoRows || err == nil && owner != ws {
			return nil, credits.Invalid("cursor", "cursor is not one this server gave for this workspace")
		}
		if err != nil {
			return nil, err
		}
	}
	out := s.ov.entries(ws, before, limit)
	if len(out) == limit {
		return out, nil
	}
	if len(out) > 0 {
		// (An entry materialized since the overlay was read is in both:
		// the walk skips down past it.)
		before, start = out[len(out)-1].Seq, -1
	}
	if start < 0 {
		err := s.r.QueryRowContext(ctx, `SELECT seq FROM ledger_heads WHERE workspace_id = ?`, ws).Scan(&start)
		if err == sql.ErrNoRows {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
	for start > 0 && len(out) < limit {
		// A little more than the page needs: the walk may first skip
		// entries the overlay gave already.
		chain, err := s.chain(ctx, start, limit-len(out)+8)
		if err != nil {
			return nil, err
		}
		for _, e := range chain {
			if e.entry.WorkspaceID != ws {
				return nil, fmt.Errorf("sqlite: ledger entry %d of %s is in the chain of %s", e.entry.Seq, e.entry.WorkspaceID, ws)
			}
			if e.entry.Seq < before && len(out) < limit {
				out = append(out, e.entry)
			}
			start = e.prev
		}
		if len(chain) == 0 {
			break
		}
	}
	return out, nil
}

type chainEntry struct {
	entry credits.Entry
	prev  int64
}

// chain reads up to n entries of a chain from seq, newest first, in one
// statement.
func (s *Store) chain(ctx context.Context, seq int64, n int) ([]chainEntry, error) {
	rows, err := s.r.QueryContext(ctx, `WITH RECURSIVE chain(seq, prev) AS (
			SELECT seq, prev_seq FROM entries WHERE seq = ?
			UNION ALL
			SELECT e.seq, e.prev_seq FROM chain c JOIN entries e ON e.seq = c.prev
			LIMIT ?)
		SELECT `+entryCols+`, prev_seq FROM entries WHERE seq IN (SELECT seq FROM chain) ORDER BY seq DESC`, seq, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []chainEntry
	for rows.Next() {
		var c chainEntry
		e, err := scanEntry(rows, &c.prev)
		if err != nil {
			return nil, err
		}
		c.entry = e
		out = append(out, c)
	}
	return out, rows.Err()
}

// DueWorkspaces lists workspaces with a held charge expiring by now: the
// overlay's, then the tables' whose charge the overlay has not finished
// since. (One finished and materialized between the two reads costs its
// workspace a look, nothing more.)
func (s *Store) DueWorkspaces(ctx context.Context, now time.Time, limit int) ([]string, error) {
	out := s.ov.dueWorkspaces(now)
	if len(out) >= limit {
		return out[:limit], nil
	}
	seen := make(map[string]bool, len(out))
	for _, id := range out {
		seen[id] = true
	}
	rows, err := s.r.QueryContext(ctx, `SELECT workspace_id, id FROM charges INDEXED BY charges_held
		WHERE status = 'held' AND expires_at <= ? ORDER BY expires_at LIMIT ?`, micros(now), 4*limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() && len(out) < limit {
		var ws, id string
		if err := rows.Scan(&ws, &id); err != nil {
			return nil, err
		}
		if seen[ws] {
			continue
		}
		if c, ok := s.ov.charge(id); ok && c.Status != credits.StatusHeld {
			continue
		}
		seen[ws] = true
		out = append(out, ws)
	}
	return out, rows.Err()
}

// PlanUsage counts workspaces per plan, current or pending.
func (s *Store) PlanUsage(ctx context.Context) (map[string]int, error) {
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT plan, COUNT(*) FROM (SELECT plan FROM workspaces UNION ALL SELECT pending_plan FROM workspaces WHERE pending_plan IS NOT NULL) GROUP BY plan`)
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

// DeleteIdempotency drops idempotency keys (of charges and of AI requests)
// created before cutoff.
func (s *Store) DeleteIdempotency(ctx context.Context, before time.Time) (int, error) {
	// Keys still in the overlay are younger than any cutoff; the flush
	// puts a renewed key's newer row in the table before the delete.
	if err := s.Flush(ctx); err != nil {
		return 0, err
	}
	// The index's entries go with their rows, in one transaction. (The
	// tail's stay until the next indexing: a lookup by seq finds no row.)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_index WHERE (hash, seq) IN (SELECT hash, seq FROM idempotency WHERE created_at < ?)`, micros(before)); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, micros(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM ai_requests WHERE created_at < ?`, micros(before)); err != nil {
		return 0, err
	}
	return int(n), nil
}
