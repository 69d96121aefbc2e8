package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/credits-dev/credits/sqlite"
)

// BackupCommand copies a SQLite database to a new file while a server may be
// writing it: its journal first, then VACUUM INTO reads one snapshot of the
// tables (in WAL mode a reader never blocks the writer, nor the writer it),
// then the copy replays the journal's batches its tables lack. So every
// batch acknowledged before the backup began is in it, none half.
type BackupCommand struct {
	Stdout io.Writer
}

// Run parses `credits backup FILE [--db PATH]` (flags before or after FILE)
// and copies.
func (c *BackupCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("credits backup", flag.ContinueOnError)
	db := fs.String("db", envOr(os.Getenv, "CREDITS_DB", "credits.db"), "the SQLite file to back up (CREDITS_DB)")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageError{"backup needs the FILE to write: credits backup FILE [--db PATH]"}
	}
	dst := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("backup takes one FILE, got %q", append([]string{dst}, fs.Args()...))}
	}
	if isPostgres(*db) {
		return usageError{"credits backup copies the SQLite store; back up PostgreSQL with its own tools, e.g. pg_dump --format=custom --file=credits.dump \"$CREDITS_DB\""}
	}
	if isPostgres(dst) {
		return usageError{"backup FILE must be a file path"}
	}
	n, err := backupSQLite(ctx, *db, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "backed up %s to %s (%d bytes)\n", *db, dst, n)
	return nil
}

// backupSQLite writes a consistent copy of src to dst, which must not
// exist: first to a temporary file beside it, checked and synced, then
// linked into place (a link never replaces a file).
func backupSQLite(ctx context.Context, src, dst string) (int64, error) {
	for _, p := range []string{src, dst} {
		if p == "" || strings.ContainsAny(p, "?#") || strings.HasPrefix(p, "file:") {
			return 0, usageError{fmt.Sprintf("%q: give a plain file path", p)}
		}
	}
	if err := mustExist(src); err != nil {
		return 0, err
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("backup: %s exists; refusing to overwrite it", dst)
	}
	tmpf, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	tmp := tmpf.Name()
	tmpf.Close()
	os.Remove(tmp) // VACUUM INTO wants to create it
	defer func() {
		os.Remove(tmp)
		os.Remove(tmp + ".lock")
		os.RemoveAll(tmp + ".journal")
	}()

	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	conn, err := sql.Open("sqlite", "file:"+src+"?"+q.Encode())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var version int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("backup: %s is not a credits database: %w", src, err)
	}
	// The journal before the tables: see sqlite.CopyJournal.
	if err := sqlite.CopyJournal(src, tmp); err != nil {
		return 0, fmt.Errorf("backup: copying the journal: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	// Opening the copy replays the journal's batches its tables lack;
	// closing it leaves one file.
	st, err := sqlite.Open(ctx, tmp)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := st.Close(); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := checkCopy(ctx, tmp); err != nil {
		return 0, err
	}
	// SQLite does not sync what VACUUM INTO writes.
	if err := syncPath(tmp); err != nil {
		return 0, err
	}
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return 0, fmt.Errorf("backup: %s exists; refusing to overwrite it", dst)
		}
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := syncPath(filepath.Dir(dst)); err != nil {
		return 0, err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// checkCopy runs SQLite's quick check on the copy.
func checkCopy(ctx context.Context, path string) error {
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer conn.Close()
	var res string
	if err := conn.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return fmt.Errorf("backup: checking the copy: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("backup: the copy fails its check: %s", res)
	}
	return nil
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: sync %s: %w", path, err)
	}
	return nil
}
