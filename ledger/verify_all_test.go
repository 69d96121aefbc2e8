package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/internal/pgtest"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/postgres"
	"github.com/credits-dev/credits/sqlite"
)

// Verify on both stores: a healthy database built through the engine
// passes; a copy corrupted with raw SQL in one way is caught, naming the
// offending row.

// fixture is the healthy database: workspace ws-a with charges in every
// state across two cycles, and ws-b, clean, that no corruption touches.
type fixture struct {
	ids  map[string]string // name -> charge id
	keys map[string]string // name -> Idempotency-Key
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// build fills st through the engine. Cycle 0 of ws-a started 40 days ago;
// it holds an old capture, an old release and a hold that outlived its
// cycle (expired after the reset: an expire of 0). Cycle 1 (now) holds a
// capture, a release, a held charge, an expiry in its own cycle, a 402 and
// an adjustment.
func build(t *testing.T, st ledger.Store) fixture {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.AddDate(0, 0, -40)
	end0 := credits.CycleStart(t0, 1)
	clk := &clock{t: t0.Add(time.Hour)}
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{NowFunc: clk.now, SweepInterval: -1, Logger: slog.New(slog.NewTextHandler(logOut(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f := fixture{ids: map[string]string{}, keys: map[string]string{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	hold := func(name, ws, op string, qty, holdSeconds int64, capture bool) string {
		t.Helper()
		key := "key-" + name
		r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: ws, IdempotencyKey: key, Operation: op, Quantity: qty, HoldSeconds: holdSeconds, Capture: capture})
		must(err)
		f.ids[name], f.keys[name] = r.Charge.ID, key
		return r.Charge.ID
	}
	_, _, err = e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "ws-a", Name: "A", Plan: "free", CycleAnchor: &t0})
	must(err)
	_, _, err = e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "ws-b", Name: "B", Plan: "starter"})
	must(err)

	hold("oldcap", "ws-a", "section_generation", 1, 0, true)
	_, err = e.Release(ctx, hold("oldrel", "ws-a", "section_generation", 1, 0, false))
	must(err)
	clk.set(end0.Add(-30 * time.Minute))
	hold("oldlate", "ws-a", "image_1k", 1, 3600, false)

	clk.set(now)
	_, err = e.Balance(ctx, "ws-a") // the reset, then the late hold's expiry
	must(err)
	_, err = e.Capture(ctx, hold("captured", "ws-a", "content_rewrite", 3, 0, false))
	must(err)
	_, err = e.Release(ctx, hold("released", "ws-a", "image_1k", 1, 0, false))
	must(err)
	hold("held", "ws-a", "section_generation", 1, 3600, false)
	hold("expired", "ws-a", "content_rewrite", 1, 1, false)
	_, err = e.Hold(ctx, ledger.HoldParams{WorkspaceID: "ws-a", IdempotencyKey: "key-refused", Operation: "image_2k", Quantity: 10})
	if credits.ErrorCode(err) != credits.CodeInsufficientCredits {
		t.Fatalf("a hold of 600 on free: %v, want insufficient_credits", err)
	}
	_, err = e.Adjust(ctx, "ws-a", 5, "goodwill")
	must(err)
	hold("b", "ws-b", "image_1k", 1, 0, true)
	clk.set(now.Add(2 * time.Second))
	_, err = e.Balance(ctx, "ws-a") // the 1-second hold expires in its own cycle
	must(err)

	for name, want := range map[string]string{"oldlate": credits.StatusExpired, "expired": credits.StatusExpired, "held": credits.StatusHeld} {
		c, err := st.Charge(ctx, f.ids[name])
		must(err)
		if c.Status != want {
			t.Fatalf("fixture: charge %s is %s, want %s", name, c.Status, want)
		}
	}
	return f
}

// backend makes healthy databases and corrupts them with raw SQL.
type backend struct {
	name string
	// fresh returns a healthy database, its fixture, and a raw
	// connection to it.
	fresh func(t *testing.T) (ledger.VerifyStore, fixture, *rawDB)
	// dialect picks a case's SQL for this backend.
	pick func(c corruption) string
}

// rawDB is a connection underneath the store.
type rawDB struct {
	exec     func(q string) error
	queryRow func(q string) (string, error)
}

func sqliteBackend(t *testing.T) backend {
	dir := t.TempDir()
	template := filepath.Join(dir, "template.db")
	var once sync.Once
	var f fixture
	return backend{
		name: "sqlite",
		pick: func(c corruption) string { return c.sqlite },
		fresh: func(t *testing.T) (ledger.VerifyStore, fixture, *rawDB) {
			ctx := context.Background()
			once.Do(func() {
				st, err := sqlite.Open(ctx, filepath.Join(dir, "build.db"))
				if err != nil {
					t.Fatal(err)
				}
				f = build(t, st)
				if _, err := st.DB().ExecContext(ctx, `VACUUM INTO ?`, template); err != nil {
					t.Fatal(err)
				}
				st.Close()
			})
			path := filepath.Join(t.TempDir(), "copy.db")
			b, err := os.ReadFile(template)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(1) // PRAGMAs hold for the one connection
			t.Cleanup(func() { db.Close() })
			raw := &rawDB{
				exec: func(q string) error { _, err := db.Exec(q); return err },
				queryRow: func(q string) (string, error) {
					var s string
					return s, db.QueryRow(q).Scan(&s)
				},
			}
			open := func() ledger.VerifyStore {
				st, err := sqlite.Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			return &lazyStore{open: open}, f, raw
		},
	}
}

// lazyStore opens the store on first use, after the raw corruption.
type lazyStore struct {
	open func() ledger.VerifyStore
	st   ledger.VerifyStore
}

func (l *lazyStore) get() ledger.VerifyStore {
	if l.st == nil {
		l.st = l.open()
	}
	return l.st
}

func (l *lazyStore) ReadSnapshot(ctx context.Context, fn func(ledger.Snapshot) error) error {
	return l.get().ReadSnapshot(ctx, fn)
}

func postgresBackend() backend {
	return backend{
		name: "postgres",
		pick: func(c corruption) string {
			if c.postgres != "" {
				return c.postgres
			}
			return c.sqlite
		},
		fresh: func(t *testing.T) (ledger.VerifyStore, fixture, *rawDB) {
			ctx := context.Background()
			st, err := postgres.Open(ctx, pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			f := build(t, st)
			raw := &rawDB{
				exec: func(q string) error { _, err := st.Pool().Exec(ctx, q); return err },
				queryRow: func(q string) (string, error) {
					var s string
					return s, st.Pool().QueryRow(ctx, q).Scan(&s)
				},
			}
			return st, f, raw
		},
	}
}

// corruption is one way to break a copy: SQL for SQLite and, where it
// differs, for PostgreSQL ({name} is the fixture's charge id, {key:name}
// its Idempotency-Key), and the violation it must cause: its code and the
// offending id (or "SELECT …" that finds it).
type corruption struct {
	name             string
	sqlite, postgres string
	code, id         string
	ws               string // the violation's workspace, if not ws-a
}

const (
	sqliteMutable  = `DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete; `
	pgMutable      = `DROP TRIGGER entries_no_change ON entries; `
	lastAfter      = `(SELECT available_after FROM entries WHERE workspace_id = 'ws-a' ORDER BY seq DESC LIMIT 1)`
	lastEntry      = `SELECT 'le_' || MAX(seq) FROM entries`
	entryCols      = `workspace_id, cycle, at, type, amount, available_after, charge_id, operation, member_id, reason`
	holdOf         = `SELECT 'le_' || seq FROM entries WHERE type = 'hold' AND charge_id = `
	currentCycle   = `cycle 1`
	oldCycle       = `cycle 0`
	lastEntryOfA   = `SELECT ` + entryCols + ` FROM entries WHERE workspace_id = 'ws-a' ORDER BY seq DESC LIMIT 1`
	copyOfCapture  = `INSERT INTO entries (` + entryCols + `) SELECT workspace_id, cycle, at, type, 0, ` + lastAfter + `, charge_id, operation, member_id, NULL FROM entries WHERE type = 'capture' AND charge_id = '{captured}'`
	copyOfHold     = `INSERT INTO entries (` + entryCols + `) SELECT workspace_id, cycle, at, type, 0, ` + lastAfter + `, charge_id, operation, member_id, NULL FROM entries WHERE type = 'hold' AND charge_id = '{held}'`
	secondGrant    = `INSERT INTO entries (` + entryCols + `) SELECT 'ws-a', 1, at, 'grant', available_after, available_after, NULL, NULL, NULL, NULL FROM (` + lastEntryOfA + `) last`
	forgedAdjust   = `INSERT INTO entries (` + entryCols + `) SELECT workspace_id, cycle, at, 'adjust', 7, available_after + 7, NULL, NULL, NULL, 'forged' FROM (` + lastEntryOfA + `) last`
	deleteCapture  = `DELETE FROM entries WHERE type = 'capture' AND charge_id = '{captured}'`
	releaseAfter   = `UPDATE entries SET available_after = available_after + 1 WHERE type = 'release' AND charge_id = '{released}'`
	deleteGrant0   = `DELETE FROM entries WHERE workspace_id = 'ws-a' AND type = 'grant' AND cycle = 0`
	copyKeyOfHeld  = `INSERT INTO idempotency (workspace_id, key, fingerprint, created_at, result) SELECT workspace_id, 'copied-key', fingerprint, created_at, result FROM idempotency WHERE key = '{key:held}'`
	copyKeyOfHeldS = `INSERT INTO idempotency (workspace_id, key, fingerprint, created_at, hash, charge_id, answer) SELECT workspace_id, 'copied-key', fingerprint, created_at, 1, charge_id, answer FROM idempotency WHERE key = '{key:held}'`
	copyCycleToWs0 = `INSERT INTO cycles (workspace_id, n, start_at, end_at, granted, available, held, used, expired) SELECT 'ws-0', n, start_at, end_at, granted, available, held, used, expired FROM cycles WHERE workspace_id = 'ws-a' AND n = 1`
	releaseOfEntry = `SELECT 'le_' || seq FROM entries WHERE type = 'release' AND charge_id = '{released}'`
)

var corruptions = []corruption{
	{name: "running sum", sqlite: sqliteMutable + releaseAfter, postgres: pgMutable + releaseAfter,
		code: ledger.ViolationLedgerRunningSum, id: releaseOfEntry},
	{name: "ledger ends off available", sqlite: forgedAdjust,
		code: ledger.ViolationLedgerAvailable, id: currentCycle},
	{name: "old cycle unbalanced",
		sqlite:   `PRAGMA ignore_check_constraints = 1; UPDATE cycles SET expired = expired + 5 WHERE workspace_id = 'ws-a' AND n = 0`,
		postgres: `ALTER TABLE cycles DROP CONSTRAINT cycles_check; UPDATE cycles SET expired = expired + 5 WHERE workspace_id = 'ws-a' AND n = 0`,
		code:     ledger.ViolationCycleUnbalanced, id: oldCycle},
	{name: "current cycle expired", sqlite: `UPDATE cycles SET expired = 3, available = available - 3 WHERE workspace_id = 'ws-a' AND n = 1`,
		code: ledger.ViolationCurrentCycleExpired, id: currentCycle},
	{name: "current cycle row lost", sqlite: `DELETE FROM cycles WHERE workspace_id = 'ws-a' AND n = 1`,
		code: ledger.ViolationCycleMissing, id: currentCycle},
	{name: "capture entry missing", sqlite: sqliteMutable + deleteCapture, postgres: pgMutable + deleteCapture,
		code: ledger.ViolationChargeFinish, id: "{captured}"},
	{name: "capture entry twice", sqlite: `DROP INDEX IF EXISTS entries_one_finish; ` + copyOfCapture,
		code: ledger.ViolationChargeFinish, id: "{captured}"},
	{name: "hold entry twice", sqlite: `DROP INDEX IF EXISTS entries_one_hold; ` + copyOfHold,
		code: ledger.ViolationChargeHold, id: "{held}"},
	{name: "released charge marked captured", sqlite: `UPDATE charges SET status = 'captured' WHERE id = '{released}'`,
		code: ledger.ViolationChargeFinish, id: "{released}"},
	{name: "captured charge marked held", sqlite: `UPDATE charges SET status = 'held', finalized_at = 0 WHERE id = '{oldcap}'`,
		postgres: `UPDATE charges SET status = 'held', finalized_at = NULL WHERE id = '{oldcap}'`,
		code:     ledger.ViolationChargeFinish, id: "{oldcap}"},
	{name: "held charge marked expired", sqlite: `UPDATE charges SET status = 'expired' WHERE id = '{held}'`,
		code: ledger.ViolationChargeFinish, id: "{held}"},
	{name: "late expiry moved into its cycle", sqlite: `UPDATE charges SET cycle = 1 WHERE id = '{oldlate}'`,
		code: ledger.ViolationChargeFinish, id: "{oldlate}"},
	{name: "cycle granted twice", sqlite: `DROP INDEX entries_one_grant; ` + secondGrant,
		code: ledger.ViolationCycleGrantedTwice, id: lastEntry},
	{name: "cycle never granted", sqlite: sqliteMutable + deleteGrant0, postgres: pgMutable + deleteGrant0,
		code: ledger.ViolationCycleNotGranted, id: oldCycle},
	{name: "charge moved to a workspace that does not exist", sqlite: `UPDATE charges SET workspace_id = 'ws-0' WHERE id = '{held}'`,
		postgres: `UPDATE charges SET workspace_id = 'ws-0' WHERE id = '{held}'`,
		code:     ledger.ViolationChargeWorkspace, id: "{held}", ws: "ws-0"},
	{name: "ledger entry of a workspace that does not exist",
		sqlite: `INSERT INTO entries (` + entryCols + `) SELECT 'ws-0', cycle, at, 'adjust', 0, available_after, NULL, NULL, NULL, 'orphan' FROM (` + lastEntryOfA + `) last`,
		code:   ledger.ViolationEntryWorkspace, id: `SELECT 'le_' || seq FROM entries WHERE workspace_id = 'ws-0'`, ws: "ws-0"},
	{name: "cycle row of a workspace that does not exist",
		sqlite:   copyCycleToWs0,
		postgres: `ALTER TABLE cycles DROP CONSTRAINT cycles_workspace_id_fkey; ` + copyCycleToWs0,
		code:     ledger.ViolationCycleWorkspace, id: currentCycle, ws: "ws-0"},
	{name: "charge row lost", sqlite: `DELETE FROM charges WHERE id = '{held}'`,
		code: ledger.ViolationEntryUnknownCharge, id: holdOf + `'{held}'`},
	{name: "stored answer names another charge",
		// The binary answer: its version byte, then the charge id (29
		// bytes, one length byte before it), then the rest.
		sqlite:   `UPDATE idempotency SET charge_id = 'ch_gone', answer = CAST(X'0107' || CAST('ch_gone' AS BLOB) || substr(answer, 32) AS BLOB) WHERE key = '{key:captured}'`,
		postgres: `UPDATE idempotency SET result = jsonb_set(result::jsonb, '{charge,id}', '"ch_gone"')::text WHERE key = '{key:captured}'`,
		code:     ledger.ViolationIdemUnknownCharge, id: "{key:captured}"},
	{name: "stored answer differs",
		// (The answer is binary: the charge it names is changed instead.)
		sqlite:   `UPDATE charges SET created_at = created_at + 1 WHERE id = '{released}'`,
		postgres: `UPDATE idempotency SET result = jsonb_set(result::jsonb, '{charge,cost}', '999')::text WHERE key = '{key:released}'`,
		code:     ledger.ViolationIdemAnswer, id: "{key:released}"},
	{name: "two keys name one charge", sqlite: copyKeyOfHeldS, postgres: copyKeyOfHeld,
		code: ledger.ViolationIdemSharedCharge, id: "{held}"},
	{name: "recent charge without its key", sqlite: `DELETE FROM idempotency WHERE key = '{key:expired}'`,
		code: ledger.ViolationChargeNoIdempotency, id: "{expired}"},
}

// expand replaces {name} and {key:name} with the fixture's ids and keys.
func (f fixture) expand(s string) string {
	var pairs []string
	for name, id := range f.ids {
		pairs = append(pairs, "{"+name+"}", id, "{key:"+name+"}", f.keys[name])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

func TestVerifyStores(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{sqliteBackend(t), postgresBackend()} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			t.Run("clean", func(t *testing.T) {
				t.Parallel()
				st, _, _ := b.fresh(t)
				var seen []ledger.Violation
				r, err := ledger.Verify(context.Background(), st, func(v ledger.Violation) { seen = append(seen, v) })
				if err != nil {
					t.Fatal(err)
				}
				if !r.OK() || len(seen) != 0 || len(r.Violations) != 0 {
					t.Fatalf("a healthy database has violations: %+v", r.Violations)
				}
				// ws-a: 2 cycles, 7 charges; ws-b: 1 cycle, 1 charge.
				// Ledger: ws-a 3 grants… counted below from the fixture.
				want := ledger.VerifyReport{Workspaces: 2, Cycles: 4, Charges: 8, IdempotencyRecords: 8, Entries: 22, Violations: []ledger.Violation{}}
				if fmt.Sprint(r) != fmt.Sprint(want) {
					t.Errorf("report %+v, want %+v", r, want)
				}
			})
			for _, c := range corruptions {
				t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
					t.Parallel()
					st, f, raw := b.fresh(t)
					if err := raw.exec(f.expand(b.pick(c))); err != nil {
						t.Fatalf("corrupting: %v", err)
					}
					id := f.expand(c.id)
					if strings.HasPrefix(id, "SELECT") {
						var err error
						if id, err = raw.queryRow(id); err != nil {
							t.Fatalf("%s: %v", id, err)
						}
					}
					r, err := ledger.Verify(context.Background(), st, nil)
					if err != nil {
						t.Fatal(err)
					}
					ws := c.ws
					if ws == "" {
						ws = "ws-a"
					}
					found := false
					for _, v := range r.Violations {
						if v.WorkspaceID == "ws-b" {
							t.Errorf("a violation in the untouched workspace: %v", v)
						}
						if v.Code == c.code && v.ID == id && v.WorkspaceID == ws {
							found = true
						}
					}
					if !found || r.OK() || r.ViolationCount != int64(len(r.Violations)) {
						t.Errorf("want %s on %s; got %d violations:\n%s", c.code, id, r.ViolationCount, list(r.Violations))
					} else {
						t.Logf("caught:\n%s", list(r.Violations))
					}
				})
			}
		})
	}
}

func list(vs []ledger.Violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "  %v\n", v)
	}
	return b.String()
}

func logOut() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}
