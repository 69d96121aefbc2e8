package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// The materializer copies journaled batches into the tables, many batches
// to a transaction, on its own goroutine: the engine's writer never waits
// for it (unless it falls maxPendingItems behind). Batches are merged
// first, so a charge held and captured within one window is one row
// written once, and a workspace's cycle is written once per window however
// many charges it took. Each window also records the last batch it holds,
// in the same transaction, so a replay after a crash starts right after it.

const (
	// maxWindowItems bounds the rows one materializing transaction
	// writes, so the AI request records, which share its connection,
	// wait at most that long.
	maxWindowItems = 30_000
	// maxPendingItems is how far the tables may fall behind the journal
	// (in rows) before the writer waits: it bounds the overlay's memory.
	maxPendingItems = 60_000
	// A window waits to gather minWindowItems rows, or until its oldest
	// batch is maxLag old: a transaction's pages are written (and synced)
	// once however many rows share them, so fewer, larger windows cost far
	// less per row. Reads never wait for it (the overlay), Flush does not.
	//
	// Twice what they were (8,000 / 15,000 / 30,000) once the overlay
	// kept a workspace's few rows in slices (rows.go), not maps: credits
	// bench many 38,219 and 39,029 pairs/s against 34,586 and 33,235, hot
	// 49,153 and 52,231 against 49,402 and 46,514 (in turn); 1,000,000
	// workspaces peaked at 164.8-173.1 MiB against 144.7 (with maps and
	// these sizes, 194.7: over the 200 MB the service promises).
	minWindowItems = 16_000
	// 100 ms. At the HTTP rows' rate (about 5,000 pairs/s) it gathers
	// windows of about 500 pairs, and a small window pays for nearly every
	// page of the workspaces' cycles and ledger heads it touches
	// (BenchmarkMaterialize: 20.4-20.6 µs of CPU and 3,280 bytes written a
	// pair at 500 pairs, 15.3-15.4 µs and 1,632-1,654 at 2,000). 400 ms
	// was measured against it, each run in turn: http/many 4,619-5,497
	// pairs/s (mean 4,948) against 3,837-5,849 (4,726), but http/hot lower
	// in six runs of seven (5,370-7,331 against 5,941-8,347): not kept.
	maxLag = 100 * time.Millisecond
	// maxPace is the longest the writer is slowed before one batch.
	maxPace = time.Millisecond
	// maxCachedHeads bounds the materializer's copy of ledger_heads (about
	// 60 bytes each); past it the copy starts again, and a workspace's
	// head is read from the table the next time it is needed.
	maxCachedHeads = 100_000
)

type materializer struct {
	mu       sync.Mutex
	queue    []*record
	items    int
	queued   uint64        // the last batch queued
	done     uint64        // the last batch materialized
	progress chan struct{} // closed and replaced after each window
	wake     chan struct{}
	stop     chan struct{}
	exited   chan struct{}
	failure  error     // the last window's error, until one succeeds
	oldest   time.Time // when the first queued batch was queued
	flushers int       // callers of wait: gather no more, write now
}

func newMaterializer(done uint64) *materializer {
	return &materializer{
		queued: done, done: done,
		progress: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
}

func recordItems(r *record) int {
	c := r.Changes
	return len(c.NewWorkspaces) + len(c.Accounts) + len(c.Cycles) + len(c.NewCharges) + len(c.Charges) + len(c.Entries) + len(c.Idempotency)
}

func (m *materializer) push(r *record) {
	m.mu.Lock()
	first := len(m.queue) == 0
	if first {
		m.oldest = time.Now()
	}
	below := m.items < minWindowItems
	m.queue = append(m.queue, r)
	m.items += recordItems(r)
	m.queued = r.Batch
	// Wake the materializer only when it has something new to decide: a
	// first batch starts its maxLag wait, a full window ends it. Woken on
	// every batch, it only looked at its queue and slept again, at the
	// cost of a thread woken from the writer's path and a timer made.
	wake := first || (below && m.items >= minWindowItems)
	m.mu.Unlock()
	if wake {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// waitRoom blocks while the tables are too far behind. Past half the limit
// it first slows the writer down in proportion, a little before every
// batch: the writer then settles at the pace the tables keep, instead of
// running ahead and stopping for a whole window, which every caller
// waiting at that moment would see as a long pause.
func (m *materializer) waitRoom(ctx context.Context) error {
	m.mu.Lock()
	over := m.items - maxPendingItems/2
	m.mu.Unlock()
	if over > 0 {
		d := min(time.Duration(over)*maxPace/time.Duration(maxPendingItems/2), maxPace)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		m.mu.Lock()
		if m.items < maxPendingItems {
			m.mu.Unlock()
			return nil
		}
		ch, failure := m.progress, m.failure
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			if failure != nil {
				return fmt.Errorf("sqlite: the tables are %d rows behind the journal: %w", maxPendingItems, failure)
			}
			return ctx.Err()
		}
	}
}

// wait blocks until every batch queued before the call is in the tables.
func (m *materializer) wait(ctx context.Context) error {
	m.mu.Lock()
	target := m.queued
	m.flushers++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.flushers--
		m.mu.Unlock()
	}()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	for {
		m.mu.Lock()
		if m.done >= target {
			m.mu.Unlock()
			return nil
		}
		ch := m.progress
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.exited:
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.done >= target {
				return nil
			}
			return fmt.Errorf("sqlite: the store closed with batches not yet in the tables (they are in the journal): %v", m.failure)
		}
	}
}

// run materializes until stopped; once stopped it drains the queue first,
// giving up only if the tables keep refusing (the journal keeps the rest).
func (s *Store) runMaterializer() {
	m := s.mat
	defer close(m.exited)
	backoff := 10 * time.Millisecond
	stopping := false
	failuresWhileStopping := 0
	wrote := false // a window since the last idle checkpoint
	for {
		m.mu.Lock()
		if !stopping && m.flushers == 0 && m.items < minWindowItems && len(m.queue) > 0 {
			if wait := maxLag - time.Since(m.oldest); wait > 0 {
				m.mu.Unlock()
				select {
				case <-time.After(wait):
				case <-m.wake:
				case <-m.stop:
					stopping = true
				}
				continue
			}
		}
		var window []*record
		items := 0
		for _, r := range m.queue {
			if len(window) > 0 && items+recordItems(r) > maxWindowItems {
				break
			}
			window = append(window, r)
			items += recordItems(r)
		}
		m.mu.Unlock()
		if len(window) == 0 {
			if stopping {
				return
			}
			// Idle: copy back what its last windows left in the WAL. Only
			// after windows of its own: tests call materialize beside an
			// idle materializer, which must not use the connection then.
			if wrote && s.walDirty.Load() {
				wrote = false
				s.checkpoint(context.Background())
				continue // something may have been queued meanwhile
			}
			select {
			case <-m.wake:
			case <-m.stop:
				stopping = true
			}
			continue
		}
		if err := s.materialize(context.Background(), window); err != nil {
			slog.Error("sqlite: copying journaled batches into the tables failed; retrying (they are safe in the journal)", "batches", len(window), "err", err)
			m.mu.Lock()
			m.failure = err
			m.mu.Unlock()
			if stopping {
				if failuresWhileStopping++; failuresWhileStopping >= 3 {
					return
				}
			}
			select {
			case <-time.After(backoff):
			case <-m.stop:
				stopping = true
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		wrote = true
		s.ov.drop(window)
		last := window[len(window)-1].Batch
		m.mu.Lock()
		m.queue = m.queue[len(window):]
		m.items -= items
		m.oldest = time.Now() // what is left was queued by now: it waits at most maxLag more
		m.done = last
		m.failure = nil
		close(m.progress)
		m.progress = make(chan struct{})
		m.mu.Unlock()
		if err := s.j.release(last); err != nil {
			slog.Error("sqlite: removing a materialized journal file failed", "err", err)
		}
	}
}

// merged is a window's rows, the newest version of each (entries are not
// merged: each is new, and materialize reads them from the records).
//
// The materializer keeps one and fills it again for each window: cleared
// maps keep their room, so a window allocates none (made anew, they were
// 6% of the engine's allocations). They are bounded by
// maxWindowItems rows.
type merged struct {
	workspaces map[string]ledger.Account
	cycles     map[ledger.CycleKey]credits.Cycle
	charges    map[string]credits.Charge
	idem       map[ledger.IdemKey]idemRow
	entries    int
}

type idemRow struct {
	rec    ledger.IdemRecord
	result []byte
}

// reset empties m, keeping its maps' room. materialize calls it when done
// too, so an idle store does not keep a window's rows alive.
func (m *merged) reset() {
	clear(m.workspaces)
	clear(m.cycles)
	clear(m.charges)
	clear(m.idem)
	m.entries = 0
}

func (m *merged) fill(window []*record) {
	if m.workspaces == nil {
		m.workspaces = map[string]ledger.Account{}
		m.cycles = map[ledger.CycleKey]credits.Cycle{}
		m.charges = map[string]credits.Charge{}
		m.idem = map[ledger.IdemKey]idemRow{}
	}
	m.reset()
	for _, r := range window {
		c := r.Changes
		for _, a := range c.NewWorkspaces {
			m.workspaces[a.Workspace.ID] = a
		}
		for _, a := range c.Accounts {
			m.workspaces[a.Workspace.ID] = a
		}
		for _, cr := range c.Cycles {
			m.cycles[ledger.CycleKey{WorkspaceID: cr.WorkspaceID, N: cr.Cycle.N}] = cr.Cycle
		}
		for _, ch := range c.NewCharges {
			m.charges[ch.ID] = ch
		}
		for _, ch := range c.Charges {
			m.charges[ch.ID] = ch
		}
		m.entries += len(c.Entries)
		for i, k := range c.Idempotency {
			m.idem[ledger.IdemKey{WorkspaceID: k.WorkspaceID, Key: k.Key}] = idemRow{k, r.Results[i]}
		}
	}
}

// A bulk statement writes many rows at once: one statement of 64 rows
// costs far less than 64 of one (measured 1.65 against 2.4 µs a row), as
// the per-statement work of the driver and SQLite is paid once. Each is
// prepared in a few sizes, and a run of rows is cut into them. 256 rows
// (3,072 arguments at most, under SQLite's 32,766) against 64 at the top:
// BenchmarkMaterialize 22.3-23.1 against 23.7-24.3 µs a pair, and credits
// bench, five runs each in turn, many 29,644-31,685 against 27,257-30,521
// pairs/s with p99 9.8-11.9 against 9.8-13.1 ms (the writer waits behind
// a longer statement, but not measurably).
type bulk struct {
	cols    int
	queries []string // queries[i] writes bulkSizes[i] rows
}

var bulkSizes = []int{256, 64, 16, 4, 1}

// newBulk makes the statement of each size once: built for each execution,
// the statements' text (up to 7 KB) was 2% of the bytes a run allocated.
func newBulk(head, tail string, cols int) bulk {
	b := bulk{cols: cols}
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for _, n := range bulkSizes {
		b.queries = append(b.queries, head+strings.TrimSuffix(strings.Repeat(row+",", n), ",")+tail)
	}
	return b
}

var (
	bulkWorkspaces = newBulk(`INSERT INTO workspaces (id, name, plan, pending_plan, cycle_anchor, created_at, cycle, next_expiry) VALUES `,
		` ON CONFLICT (id) DO UPDATE SET plan = excluded.plan, pending_plan = excluded.pending_plan, cycle = excluded.cycle, next_expiry = excluded.next_expiry`, 8)
	bulkCycles = newBulk(`INSERT INTO cycles (workspace_id, n, start_at, end_at, granted, available, held, used, expired) VALUES `,
		` ON CONFLICT (workspace_id, n) DO UPDATE SET granted = excluded.granted, available = excluded.available, held = excluded.held, used = excluded.used, expired = excluded.expired`, 9)
	bulkCharges = newBulk(`INSERT INTO charges (`+chargeCols+`) VALUES `,
		` ON CONFLICT (id) DO UPDATE SET status = excluded.status, finalized_at = excluded.finalized_at`, 12)
	bulkEntries = newBulk(`INSERT INTO entries (seq, workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason, prev_seq) VALUES `, ``, 12)
	bulkHeads   = newBulk(`INSERT INTO ledger_heads (workspace_id, seq) VALUES `, ` ON CONFLICT (workspace_id) DO UPDATE SET seq = excluded.seq`, 2)
	// Plain inserts: the window has one row per key (merge), and a key
	// stored before is either still live (then the engine answered from
	// it and wrote nothing) or past its lifetime (then the new row is the
	// newest, which lookups take).
	// The seq is given, not left to SQLite, so the tail learns it.
	bulkIdem = newBulk(`INSERT INTO idempotency (seq, workspace_id, key, fingerprint, created_at, hash, charge_id, answer) VALUES `, ``, 8)
)

const (
	qBegin           = `BEGIN IMMEDIATE`
	qCommit          = `COMMIT`
	qRollback        = `ROLLBACK`
	qSetMaterialized = `UPDATE journal_state SET materialized = ?`
	qLedgerHead      = `SELECT seq FROM ledger_heads WHERE workspace_id = ?`
	// The tail's keys, into the index in its order (see idemtail.go).
	qIndexIdem  = `INSERT INTO idempotency_index (hash, seq) SELECT hash, seq FROM idempotency WHERE seq > ? ORDER BY hash, seq`
	qSetIndexed = `UPDATE journal_state SET indexed = ?`
)

var materializeQueries = func() []string {
	qs := []string{qBegin, qCommit, qRollback, qSetMaterialized, qLedgerHead, qIndexIdem, qSetIndexed}
	for _, b := range []bulk{bulkWorkspaces, bulkCycles, bulkCharges, bulkEntries, bulkHeads, bulkIdem} {
		qs = append(qs, b.queries...)
	}
	return qs
}()

// execBulk writes one table's rows of a window: args holds the rows'
// values, b.cols a row.
func (c *liteConn) execBulk(ctx context.Context, b bulk, args liteArgs) error {
	rows := len(args) / b.cols
	for i, n := range bulkSizes {
		for ; rows >= n; rows -= n {
			if err := c.exec(ctx, b.queries[i], args[:n*b.cols]...); err != nil {
				return err
			}
			// A window is tens of milliseconds of SQLite on this
			// goroutine, and Go preempts it only every 10 ms: yielding
			// after each statement lets the engine's writer, whose fsync
			// just returned, answer its callers now. credits bench p99,
			// 3 runs each: 18.4-21.7 ms against 26.5-29.8 (many), 13.1-17.1
			// against 22.5-23.4 (hot).
			runtime.Gosched()
			args = args[n*b.cols:]
		}
	}
	return nil
}

// materialize writes a window of batches into the tables in one
// transaction, on the materializer's connection (see liteConn).
func (s *Store) materialize(ctx context.Context, window []*record) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	w, err := s.materializeWindow(ctx, window)
	if err != nil {
		return err
	}
	// Only now, with the tables holding them, may the heads be cached,
	// and the keys be found through the tail (before the overlay drops
	// them: see idemtail.go).
	if len(s.heads)+len(w.heads) > maxCachedHeads {
		s.heads = make(map[string]int64, len(w.heads))
	}
	for id, seq := range w.heads {
		s.heads[id] = seq
	}
	s.idemSeq = w.idemSeq
	if w.indexed {
		s.indexed = w.idemSeq
		s.tail.clear()
	} else {
		s.tail.add(s.tailNew)
	}
	s.afterWindow(ctx)
	return nil
}

// written is what a window's commit changed besides the tables.
type written struct {
	heads   map[string]int64 // the window's workspaces' newest entries
	idemSeq int64            // the newest idempotency row
	indexed bool             // whether every row up to it is in idempotency_index
}

// materializeWindow writes the window in one transaction and commits it.
func (s *Store) materializeWindow(ctx context.Context, window []*record) (w written, err error) {
	m := &s.merged
	m.fill(window)
	defer m.reset()
	c := s.lite
	if err := c.exec(ctx, qBegin); err != nil {
		return w, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = c.exec(context.Background(), qRollback) // the error that brought us here is the one to report
		}
	}()
	// Rows go out 256 at a time as they are made (execBulk writes a
	// table's rest at its end): one buffer of 256 rows serves every table
	// and window, where gathering a table's rows first grew a slice of up
	// to 360,000 values in each window.
	args := s.bulkArgs[:0]
	defer func() {
		clear(args[:cap(args)]) // keep no row alive
		s.bulkArgs = args[:0]
	}()
	full := func(b bulk) error {
		if len(args) < bulkSizes[0]*b.cols {
			return nil
		}
		err := c.execBulk(ctx, b, args)
		args = args[:0]
		return err
	}

	// Parents before children (the rows hold the foreign keys at every
	// statement, though this connection checks none), each in key order:
	// b-tree inserts in order touch each page once. Every value is an
	// argument as liteConn binds it: nothing converts or boxes them.
	if len(m.workspaces) > 0 {
		args = args[:0]
		for _, id := range sortedMapKeys(m.workspaces) {
			a := m.workspaces[id]
			ws := a.Workspace
			args = args.text(ws.ID).text(ws.Name).text(ws.Plan).textOrNull(ws.PendingPlan).int(micros(ws.CycleAnchor)).int(micros(ws.CreatedAt)).
				int(int64(a.Cycle.N)).int(micros(a.NextExpiry))
			if err := full(bulkWorkspaces); err != nil {
				return w, fmt.Errorf("workspaces: %w", err)
			}
		}
		if err := c.execBulk(ctx, bulkWorkspaces, args); err != nil {
			return w, fmt.Errorf("workspaces: %w", err)
		}
	}
	if len(m.cycles) > 0 {
		keys := make([]ledger.CycleKey, 0, len(m.cycles))
		for k := range m.cycles {
			keys = append(keys, k)
		}
		ledger.SortCycleKeys(keys)
		args = args[:0]
		for _, k := range keys {
			cy := m.cycles[k]
			args = args.text(k.WorkspaceID).int(int64(cy.N)).int(micros(cy.Start)).int(micros(cy.End)).
				int(cy.Granted).int(cy.Available).int(cy.Held).int(cy.Used).int(cy.Expired)
			if err := full(bulkCycles); err != nil {
				return w, fmt.Errorf("cycles: %w", err)
			}
		}
		if err := c.execBulk(ctx, bulkCycles, args); err != nil {
			return w, fmt.Errorf("cycles: %w", err)
		}
	}
	if len(m.charges) > 0 {
		args = args[:0]
		for _, id := range sortedMapKeys(m.charges) {
			ch := m.charges[id]
			args = args.text(ch.ID).text(ch.WorkspaceID).int(int64(ch.Cycle)).text(ch.Operation).int(ch.Quantity).int(ch.Cost).
				text(ch.Status).textOrNull(ch.MemberID)
			if len(ch.Metadata) > 0 {
				b, err := json.Marshal(ch.Metadata)
				if err != nil {
					return w, err
				}
				args = args.text(string(b))
			} else {
				args = args.null()
			}
			args = args.int(micros(ch.CreatedAt)).int(micros(ch.ExpiresAt)).int(micros(ch.FinalizedAt))
			if err := full(bulkCharges); err != nil {
				return w, fmt.Errorf("charges: %w", err)
			}
		}
		if err := c.execBulk(ctx, bulkCharges, args); err != nil {
			return w, fmt.Errorf("charges: %w", err)
		}
	}
	if m.entries > 0 {
		heads := make(map[string]int64, min(m.entries, 1024))
		w.heads = heads
		args = args[:0]
		for _, r := range window {
			for i := range r.Changes.Entries {
				e := &r.Changes.Entries[i]
				prev, ok := heads[e.WorkspaceID]
				if !ok {
					if prev, ok = s.heads[e.WorkspaceID]; !ok {
						if prev, _, err = c.queryInt64(ctx, qLedgerHead, liteArg{kind: argText, s: e.WorkspaceID}); err != nil {
							return w, fmt.Errorf("ledger head of %s: %w", e.WorkspaceID, err)
						}
					}
				}
				if prev >= e.Seq {
					return w, fmt.Errorf("entry %d of %s follows entry %d: the ledger would go back", e.Seq, e.WorkspaceID, prev)
				}
				heads[e.WorkspaceID] = e.Seq
				args = args.int(e.Seq).text(e.WorkspaceID).int(int64(e.Cycle)).int(micros(e.At)).text(e.Type).int(e.Amount).int(e.AvailableAfter).
					nonEmpty(e.ChargeID).nonEmpty(e.Operation).nonEmpty(e.MemberID).nonEmpty(e.Reason).int(prev)
				if err := full(bulkEntries); err != nil {
					return w, fmt.Errorf("entries: %w", err)
				}
			}
		}
		if err := c.execBulk(ctx, bulkEntries, args); err != nil {
			return w, fmt.Errorf("entries: %w", err)
		}
		args = args[:0]
		for _, id := range sortedMapKeys(heads) {
			args = args.text(id).int(heads[id])
			if err := full(bulkHeads); err != nil {
				return w, fmt.Errorf("ledger heads: %w", err)
			}
		}
		if err := c.execBulk(ctx, bulkHeads, args); err != nil {
			return w, fmt.Errorf("ledger heads: %w", err)
		}
	}
	w.idemSeq = s.idemSeq
	s.tailNew = s.tailNew[:0]
	if len(m.idem) > 0 {
		args = args[:0]
		for _, r := range m.idem {
			id, err := answerChargeID(r.result)
			if err != nil {
				return w, fmt.Errorf("idempotency key %q: %w", r.rec.Key, err)
			}
			w.idemSeq++
			h := idemHash(r.rec.WorkspaceID, r.rec.Key)
			args = args.int(w.idemSeq).text(r.rec.WorkspaceID).text(r.rec.Key).text(r.rec.Fingerprint).int(micros(r.rec.CreatedAt)).
				int(h).nonEmpty(id).blob(r.result)
			if err := full(bulkIdem); err != nil {
				return w, fmt.Errorf("idempotency keys: %w", err)
			}
			s.tailNew = append(s.tailNew, tailKey{hash: h, seq: w.idemSeq})
		}
		if err := c.execBulk(ctx, bulkIdem, args); err != nil {
			return w, fmt.Errorf("idempotency keys: %w", err)
		}
		if s.tail.len()+len(s.tailNew) >= s.tailMax {
			if err := c.exec(ctx, qIndexIdem, liteArg{kind: argInt, i: s.indexed}); err != nil {
				return w, fmt.Errorf("indexing idempotency keys: %w", err)
			}
			if err := c.exec(ctx, qSetIndexed, liteArg{kind: argInt, i: w.idemSeq}); err != nil {
				return w, err
			}
			w.indexed = true
		}
	}
	if err := c.exec(ctx, qSetMaterialized, liteArg{kind: argInt, i: int64(window[len(window)-1].Batch)}); err != nil {
		return w, err
	}
	if err := c.exec(ctx, qCommit); err != nil {
		return w, err
	}
	committed = true
	return w, nil
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// replay materializes the journal's batches that the tables do not hold
// yet. It runs in Open, before anything else writes.
func (s *Store) replay(ctx context.Context, materialized uint64) (last uint64, err error) {
	last = materialized
	var window []*record
	items := 0
	flush := func() error {
		if len(window) == 0 {
			return nil
		}
		if err := s.materialize(ctx, window); err != nil {
			return err
		}
		window, items = nil, 0
		return nil
	}
	err = readJournal(journalDir(s.path), materialized, func(payload []byte) error {
		r, err := decodeRecord(payload)
		if err != nil {
			return err
		}
		if r.Batch <= last {
			return nil // already in the tables
		}
		if r.Batch != last+1 {
			return fmt.Errorf("batch %d follows batch %d: the journal has a gap", r.Batch, last)
		}
		last = r.Batch
		window = append(window, r)
		if items += recordItems(r); items >= maxWindowItems {
			return flush()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return last, flush()
}
