package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
)

// MigrateCommand applies the store's schema migrations and exits.
type MigrateCommand struct {
	Stdout io.Writer
}

// Run parses flags and migrates.
func (c *MigrateCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("credits migrate", flag.ContinueOnError)
	db := fs.String("db", envOr(os.Getenv, "CREDITS_DB", "credits.db"), "SQLite file path or postgres:// URL (CREDITS_DB)")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("migrate takes no arguments, got %q", fs.Args())}
	}
	st, err := openStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(c.Stdout, "migrated %s\n", redact(*db))
	return nil
}
