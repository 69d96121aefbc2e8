package sqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
	"github.com/credits-dev/credits/storetest"
)

func newEngine(t *testing.T, st ledger.Store) *ledger.Engine {
	t.Helper()
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, _, err := e.CreateWorkspace(context.Background(), ledger.CreateWorkspaceParams{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func openAt(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A batch whose journal write fails is answered unavailable and charges
// nothing, now or after a restart; the store then refuses writes rather
// than guess what the file holds.
func TestJournalWriteFailureChargesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credits.db")
	st := openAt(t, path)
	e := newEngine(t, st)
	if _, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k0", Operation: "image_1k"}); err != nil {
		t.Fatal(err)
	}
	// A read-only handle on the journal file: the write fails, and so does
	// cutting the file back.
	ro, err := os.Open(sqlite.JournalPath(st))
	if err != nil {
		t.Fatal(err)
	}
	rw := sqlite.SwapJournalFile(st, ro)
	_, err = e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k"})
	if credits.ErrorCode(err) != credits.CodeUnavailable {
		t.Fatalf("err %v, want unavailable", err)
	}
	_, err = e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k2", Operation: "image_1k"})
	if credits.ErrorCode(err) != credits.CodeUnavailable {
		t.Fatalf("after a failed journal write: err %v, want unavailable", err)
	}
	b, err := e.Balance(ctx, "w")
	if err != nil || b.Available != 220 || b.Held != 30 {
		t.Fatalf("balance %+v %v, want only the first hold", b, err)
	}
	sqlite.SwapJournalFile(st, rw)
	ro.Close()
	e.Close()
	st.Close()

	// After a restart the failed holds are not there, and their keys run.
	st = openAt(t, path)
	e2, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	r, err := e2.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k"})
	if err != nil || r.Balance.Available != 190 || r.Balance.Held != 60 {
		t.Fatalf("after restart: %+v %v", r.Balance, err)
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// While the tables refuse a batch, it is still acknowledged (it is in the
// journal), readers see it, and it reaches the tables once they accept it.
func TestMaterializerFailureLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openAt(t, filepath.Join(t.TempDir(), "credits.db"))
	e := newEngine(t, st)
	db := sqlite.WriterDB(st)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER no_entries BEFORE INSERT ON entries BEGIN SELECT RAISE(ABORT, 'disk says no'); END`); err != nil {
		t.Fatal(err)
	}
	r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Capture(ctx, r.Charge.ID); err != nil {
		t.Fatal(err)
	}
	c, err := st.Charge(ctx, r.Charge.ID)
	if err != nil || c.Status != credits.StatusCaptured {
		t.Fatalf("charge %+v %v", c, err)
	}
	a, err := st.Account(ctx, "w")
	if err != nil || a.Cycle.Available != 220 || a.Cycle.Used != 30 {
		t.Fatalf("account %+v %v", a.Cycle, err)
	}
	entries, err := st.Entries(ctx, "w", 0, 10)
	if err != nil || len(entries) != 3 || entries[0].Type != "capture" || entries[2].Type != "grant" {
		t.Fatalf("entries %+v %v", entries, err)
	}
	var inTable int
	if err := db.QueryRow(`SELECT COUNT(*) FROM charges`).Scan(&inTable); err != nil || inTable != 0 {
		t.Fatalf("charges in the table while it refuses: %d %v", inTable, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := st.Flush(short); err == nil {
		t.Fatal("flush returned while the tables refuse the batch")
	}
	if _, err := db.Exec(`DROP TRIGGER no_entries`); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM charges WHERE status = 'captured'`).Scan(&inTable); err != nil || inTable != 1 {
		t.Fatalf("captured charges in the table: %d %v", inTable, err)
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// The materializer writes on a connection of its own (liteConn), not on
// the writer connection w: when database/sql replaces w's connection, the
// tables keep up, and w (the AI and auth records') works on the new one.
func TestMaterializerNewConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openAt(t, filepath.Join(t.TempDir(), "credits.db"))
	e := newEngine(t, st)
	db := sqlite.WriterDB(st)
	pair := func(key string) {
		t.Helper()
		r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: key, Operation: "content_rewrite"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Capture(ctx, r.Charge.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	driverConn := func() any {
		t.Helper()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var dc any
		if err := conn.Raw(func(c any) error { dc = c; return nil }); err != nil {
			t.Fatal(err)
		}
		return dc
	}
	pair("k1")
	before := driverConn()
	// ErrBadConn from Raw makes database/sql close the connection and open
	// another for the next caller.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Raw(func(any) error { return driver.ErrBadConn }); !errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("Raw: %v", err)
	}
	conn.Close()
	if driverConn() == before {
		t.Fatal("database/sql kept the connection: the test no longer replaces it")
	}
	pair("k2")
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM charges WHERE status = 'captured'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("captured charges in the table: %d %v", n, err)
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// A crash leaves batches in the journal that the tables lack: Open replays
// them. The crash is a copy of the files taken while the tables refuse every
// batch, so the copy's tables lack them all.
func TestReplayAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st := openAt(t, filepath.Join(dir, "credits.db"))
	e := newEngine(t, st)
	db := sqlite.WriterDB(st)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER no_charges BEFORE INSERT ON charges BEGIN SELECT RAISE(ABORT, 'disk says no'); END`); err != nil {
		t.Fatal(err)
	}
	var captured []string
	for i := range 20 {
		r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: string(rune('a' + i)), Operation: "content_rewrite"})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := e.Capture(ctx, r.Charge.ID); err != nil {
				t.Fatal(err)
			}
			captured = append(captured, r.Charge.ID)
		}
	}
	want, err := e.Balance(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	// Copy the database (checkpointed: the WAL is in the file) and the
	// journal as they are now.
	crash := filepath.Join(t.TempDir(), "credits.db")
	if _, err := db.Exec(`VACUUM INTO ?`, crash); err != nil {
		t.Fatal(err)
	}
	copyDir(t, filepath.Join(dir, "credits.db.journal"), crash+".journal")
	// The copy has the trigger too: drop it there before opening.
	raw, err := sql.Open("sqlite", crash)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DROP TRIGGER no_charges`); err != nil {
		t.Fatal(err)
	}
	var inTable int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM charges`).Scan(&inTable); err != nil || inTable != 0 {
		t.Fatalf("the crashed tables hold %d charges (%v), want none", inTable, err)
	}
	raw.Close()

	re := openAt(t, crash)
	if err := re.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.WriterDB(re).QueryRow(`SELECT COUNT(*) FROM charges`).Scan(&inTable); err != nil || inTable != 20 {
		t.Fatalf("after replay the tables hold %d charges (%v), want 20", inTable, err)
	}
	a, err := re.Account(ctx, "w")
	if err != nil || a.Cycle.Available != want.Available || a.Cycle.Held != want.Held || a.Cycle.Used != want.Used {
		t.Fatalf("after replay %+v %v, want %+v", a.Cycle, err, want)
	}
	for _, id := range captured {
		if c, err := re.Charge(ctx, id); err != nil || c.Status != credits.StatusCaptured {
			t.Fatalf("charge %s: %+v %v", id, c, err)
		}
	}
	entries, err := re.Entries(ctx, "w", 0, 100)
	if err != nil || len(entries) != 31 {
		t.Fatalf("%d entries (%v), want 31", len(entries), err)
	}
	if err := ledger.Check(ctx, re); err != nil {
		t.Fatal(err)
	}
	// The replayed store goes on numbering where the journal stopped.
	e2, err := ledger.New(re, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	r, err := e2.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "after", Operation: "content_rewrite"})
	if err != nil || r.Balance.Available != want.Available-1 {
		t.Fatalf("hold after replay: %+v %v", r.Balance, err)
	}
	// A key used before the crash answers as it did.
	again, err := e2.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "a", Operation: "content_rewrite"})
	if err != nil || again.Charge.ID != captured[0] {
		t.Fatalf("retried key: %+v %v", again.Charge, err)
	}
	if err := ledger.Check(ctx, re); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		src, err := os.Open(filepath.Join(from, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		dst.Close()
	}
}

// Readers racing the materializer never see an acknowledged charge vanish,
// a ledger shrink, or a balance that does not add up: each read looks at
// the overlay before the tables, and a row leaves the overlay only after
// the tables hold it.
func TestReadsDuringMaterializing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openAt(t, filepath.Join(t.TempDir(), "credits.db"))
	e := newEngine(t, st)
	if _, _, err := e.ChangePlan(ctx, "w", "pro"); err != nil {
		t.Fatal(err)
	}
	acked := make(chan string, 10_000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(1500 * time.Millisecond) // past several materializer windows
		// At most 4,500 holds, 1 credit each, of the plan's 5,000: a fast
		// disk holds more than 5,000 in the time, and the last were refused.
		for i := 0; i < 4500 && time.Now().Before(deadline); i++ {
			r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: fmt.Sprint("k", i), Operation: "content_rewrite"})
			if err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				if _, err := e.Capture(ctx, r.Charge.ID); err != nil {
					t.Error(err)
					return
				}
			}
			select {
			case acked <- r.Charge.ID:
			default:
			}
		}
	}()
	var seen []string
	lastEntries := 0
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
	drain:
		for {
			select {
			case id := <-acked:
				seen = append(seen, id)
			default:
				break drain
			}
		}
		for _, id := range seen[max(0, len(seen)-20):] {
			if _, err := st.Charge(ctx, id); err != nil {
				t.Fatalf("acknowledged charge %s: %v", id, err)
			}
		}
		a, err := st.Account(ctx, "w")
		if err != nil || !a.Cycle.Balanced() {
			t.Fatalf("account %+v %v", a.Cycle, err)
		}
		page, err := st.Entries(ctx, "w", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(page); i++ {
			if page[i].Seq >= page[i-1].Seq {
				t.Fatalf("ledger page out of order at %d: %d then %d", i, page[i-1].Seq, page[i].Seq)
			}
		}
		if n := int(page[0].Seq); n < lastEntries {
			t.Fatalf("the newest entry went back from %d to %d", lastEntries, n)
		} else {
			lastEntries = n
		}
	}
	if len(seen) < 100 || reads < 100 {
		t.Fatalf("only %d charges and %d reads: the race was not run", len(seen), reads)
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// One process at a time owns a store: a second Open of the same file is
// refused while the first is open, and allowed once it is closed.
func TestSecondOpenRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "credits.db")
	first, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "another process has this database open") {
		t.Fatalf("second open: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := openAt(t, path)
	if err := again.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A hold the tables still have as held but the overlay has expired is not
// listed as due: the sweeper would look at its workspace for nothing.
func TestDueWorkspacesSkipsFinishedInOverlay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openAt(t, filepath.Join(t.TempDir(), "credits.db"))
	clk := storetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{NowFunc: clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", HoldSeconds: 5}); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil { // the tables have it held
		t.Fatal(err)
	}
	clk.Advance(6 * time.Second)
	if due, err := st.DueWorkspaces(ctx, clk.Now(), 10); err != nil || len(due) != 1 {
		t.Fatalf("before the sweep: %v %v", due, err)
	}
	if n, err := e.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v", n, err)
	}
	// The expiry is in the overlay now (and maybe already in the tables).
	if due, err := st.DueWorkspaces(ctx, clk.Now(), 10); err != nil || len(due) != 0 {
		t.Fatalf("after the sweep: %v %v", due, err)
	}
}
