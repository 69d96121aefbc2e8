package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/credits-dev/credits/ledger"
)

// VerifyCommand checks every workspace's invariants (ledger.Verify) and
// fails, naming the offending rows, on any violation. It reads each
// workspace in one snapshot, so it may run while servers are serving.
type VerifyCommand struct {
	Stdout io.Writer
}

// violationsError is a verify that found broken invariants (exit code 1).
type violationsError struct {
	count int64
	ids   []string
}

func (e violationsError) Error() string {
	more := ""
	if int64(len(e.ids)) < e.count {
		more = ", …"
	}
	return fmt.Sprintf("verify: %d violation(s): %s%s", e.count, strings.Join(e.ids, ", "), more)
}

// Run parses flags and verifies.
func (c *VerifyCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("credits verify", flag.ContinueOnError)
	db := fs.String("db", envOr(os.Getenv, "CREDITS_DB", "credits.db"), "SQLite file path or postgres:// URL (CREDITS_DB)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("verify takes no arguments, got %q", fs.Args())}
	}
	if err := mustExist(*db); err != nil {
		return err
	}
	st, err := openStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	vs, ok := st.(ledger.VerifyStore)
	if !ok {
		return errors.New("verify: this store cannot be verified")
	}
	var ids []string
	rep, err := ledger.Verify(ctx, vs, func(v ledger.Violation) {
		if len(ids) < 10 {
			ids = append(ids, v.WorkspaceID+"/"+v.ID)
		}
		if !*asJSON {
			fmt.Fprintf(c.Stdout, "VIOLATION %s\n", v)
		}
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			OK bool `json:"ok"`
			ledger.VerifyReport
		}{rep.OK(), rep}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.Stdout, "verified %s: %d workspaces, %d cycles, %d ledger entries, %d charges, %d idempotency records\n",
			redact(*db), rep.Workspaces, rep.Cycles, rep.Entries, rep.Charges, rep.IdempotencyRecords)
	}
	if !rep.OK() {
		return violationsError{count: rep.ViolationCount, ids: ids}
	}
	if !*asJSON {
		fmt.Fprintln(c.Stdout, "ok: every invariant holds")
	}
	return nil
}

// isPostgres reports whether a --db value is a PostgreSQL URL.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// mustExist refuses a SQLite path that names no file: opening it would make
// an empty database.
func mustExist(db string) error {
	if isPostgres(db) {
		return nil
	}
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("--db %s: %w", db, err)
	}
	return nil
}
