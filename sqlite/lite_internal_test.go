package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// newLite makes a database with table t in WAL mode (through the driver,
// as Open does) and opens the materializer's connection on it.
func newLite(t *testing.T) (*liteConn, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lite.db")
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, s TEXT, b BLOB, n TEXT)`); err != nil {
		t.Fatal(err)
	}
	c, err := openLite(path, writerPragmas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.close(); err != nil {
			t.Error(err)
		}
	})
	return c, db
}

// Every kind of argument arrives as itself, in multi-row statements whose
// text and blob arguments share the connection's buffer (grown past its
// first size here), and one statement's arguments do not leak into the
// next's.
func TestLiteConnBinds(t *testing.T) {
	ctx := context.Background()
	c, db := newLite(t)
	long := strings.Repeat("x", 100_000) // past the buffer's first 64 KiB
	member := "m"
	type row struct {
		args  liteArgs
		i     int64
		s     string
		b     []byte
		n     *string
		types [4]string // typeof(i), typeof(s), typeof(b), typeof(n)
	}
	rows := []row{
		{liteArgs{}.int(1).int(-7).text("héllo").blob([]byte{0, 1, 2, 255}).textOrNull(nil),
			-7, "héllo", []byte{0, 1, 2, 255}, nil, [4]string{"integer", "text", "blob", "null"}},
		{liteArgs{}.int(2).int(1 << 62).text("").blob([]byte{}).blob(nil),
			1 << 62, "", []byte{}, nil, [4]string{"integer", "text", "blob", "null"}},
		{liteArgs{}.int(3).int(0).text(long).blob([]byte("after the long one")).textOrNull(&member),
			0, long, []byte("after the long one"), &member, [4]string{"integer", "text", "blob", "text"}},
		{liteArgs{}.int(4).null().nonEmpty("kept").null().nonEmpty(""),
			0, "kept", nil, nil, [4]string{"null", "text", "null", "null"}},
	}
	q := `INSERT INTO t (id, i, s, b, n) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)`
	if err := c.exec(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	if err := c.exec(ctx, q, append(rows[0].args, rows[1].args...)...); err != nil {
		t.Fatal(err)
	}
	one := `INSERT INTO t (id, i, s, b, n) VALUES (?, ?, ?, ?, ?)`
	for _, r := range rows[2:] {
		if err := c.exec(ctx, one, r.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.exec(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	for id, r := range rows {
		id++
		var i sql.NullInt64
		var s, n sql.NullString
		var b []byte
		var types [4]string
		if err := db.QueryRow(`SELECT i, s, b, n, typeof(i), typeof(s), typeof(b), typeof(n) FROM t WHERE id = ?`, id).
			Scan(&i, &s, &b, &n, &types[0], &types[1], &types[2], &types[3]); err != nil {
			t.Fatalf("row %d: %v", id, err)
		}
		if types != r.types {
			t.Errorf("row %d: types %v, want %v", id, types, r.types)
		}
		if i.Int64 != r.i || s.String != r.s {
			t.Errorf("row %d: i %d s %.20q, want %d %.20q", id, i.Int64, s.String, r.i, r.s)
		}
		if !bytes.Equal(b, r.b) {
			t.Errorf("row %d: b %q, want %q", id, b, r.b)
		}
		if (r.n != nil) != n.Valid || (r.n != nil && n.String != *r.n) {
			t.Errorf("row %d: n %v, want %v", id, n, r.n)
		}
	}

	v, ok, err := c.queryInt64(ctx, `SELECT i FROM t WHERE id = ?`, liteArg{kind: argInt, i: 2})
	if err != nil || !ok || v != 1<<62 {
		t.Fatalf("queryInt64 = %d %v %v", v, ok, err)
	}
	if _, ok, err := c.queryInt64(ctx, `SELECT i FROM t WHERE id = ?`, liteArg{kind: argInt, i: 99}); err != nil || ok {
		t.Fatalf("queryInt64 of no row = %v %v", ok, err)
	}
	if _, _, err := c.queryInt64(ctx, `SELECT s FROM t WHERE id = ?`, liteArg{kind: argInt, i: 1}); err == nil || !strings.Contains(err.Error(), "integer") {
		t.Fatalf("queryInt64 of text: %v", err)
	}
}

// An empty string or blob is not NULL, even in a connection's first
// statement (SQLite binds a NULL pointer as NULL).
func TestLiteConnEmptyFirst(t *testing.T) {
	ctx := context.Background()
	c, db := newLite(t)
	if err := c.exec(ctx, `INSERT INTO t (id, s, b) VALUES (?, ?, ?)`, liteArgs{}.int(1).text("").blob([]byte{})...); err != nil {
		t.Fatal(err)
	}
	var ts, tb string
	if err := db.QueryRow(`SELECT typeof(s), typeof(b) FROM t WHERE id = 1`).Scan(&ts, &tb); err != nil || ts != "text" || tb != "blob" {
		t.Fatalf("typeof %q %q (%v), want text blob", ts, tb, err)
	}
}

// Mistakes come back as errors naming what went wrong, and leave the
// statement usable.
func TestLiteConnErrors(t *testing.T) {
	ctx := context.Background()
	c, db := newLite(t)
	ins := `INSERT INTO t (id, s) VALUES (?, ?)`
	cases := []struct {
		name string
		q    string
		args liteArgs
		want string
	}{
		{"too few arguments", ins, liteArgs{}.int(1), "1 arguments for 2 parameters"},
		{"no kind", ins, append(liteArgs{}.int(1), liteArg{kind: 9}), "argument 2 has no kind 9"},
		{"bad SQL", `INSERT INTO nowhere VALUES (?)`, liteArgs{}.int(1), "no such table"},
		{"constraint", ins, liteArgs{}.int(1).text("again"), "UNIQUE constraint failed"},
	}
	if err := c.exec(ctx, ins, liteArgs{}.int(1).text("first")...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if err := c.exec(ctx, tc.q, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if err := c.exec(ctx, ins, liteArgs{}.int(2).text("second")...); err != nil {
		t.Fatalf("after the errors: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows %d %v, want 2", n, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.exec(cancelled, ins, liteArgs{}.int(3).text("third")...); err == nil {
		t.Fatal("exec ran with its context done")
	}
}

// The materializer's connection and w (the AI and auth records') both
// write: one waits for the other's transaction instead of failing.
func TestLiteConnWaitsForTheOtherWriter(t *testing.T) {
	ctx := context.Background()
	c, db := newLite(t)
	if err := c.exec(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	if err := c.exec(ctx, `INSERT INTO t (id, s) VALUES (?, ?)`, liteArgs{}.int(1).text("lite")...); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := db.Exec(`INSERT INTO t (id, s) VALUES (2, 'w')`)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("w wrote while the other writer held its transaction: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := c.exec(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("w after the commit: %v", err)
	}
	// And the other way round.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO t (id, s) VALUES (3, 'w')`); err != nil {
		t.Fatal(err)
	}
	go func() { done <- c.exec(ctx, `INSERT INTO t (id, s) VALUES (?, ?)`, liteArgs{}.int(4).text("lite")...) }()
	time.Sleep(100 * time.Millisecond)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("lite after w's commit: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("rows %d %v, want 4", n, err)
	}
}

// The materializer's connection runs with the writer's pragmas: its commits
// synced (a journal file is deleted once the tables hold its batches), no
// checkpoint on commit (it checkpoints between windows), a WAL cut back to
// 64 MiB when it starts over, no foreign-key checks, its page cache.
func TestLiteConnPragmas(t *testing.T) {
	ctx := context.Background()
	c, _ := newLite(t)
	for q, want := range map[string]int64{
		`PRAGMA synchronous`:        2, // FULL
		`PRAGMA wal_autocheckpoint`: 0,
		`PRAGMA foreign_keys`:       0,
		`PRAGMA cache_size`:         -8192,
		`PRAGMA temp_store`:         2, // MEMORY
		`PRAGMA busy_timeout`:       10000,
		`PRAGMA journal_size_limit`: 64 << 20,
	} {
		if got, ok, err := c.queryInt64(ctx, q); err != nil || !ok || got != want {
			t.Errorf("%s = %d (%v, %v), want %d", q, got, ok, err, want)
		}
	}
	var mode string
	st, err := c.stmt(`PRAGMA journal_mode`)
	if err != nil {
		t.Fatal(err)
	}
	if rc := sqlite3.Xsqlite3_step(c.tls, st.p); rc == sqlite3.SQLITE_ROW {
		mode = libc.GoString(sqlite3.Xsqlite3_column_text(c.tls, st.p, 0))
	}
	sqlite3.Xsqlite3_reset(c.tls, st.p)
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
}
