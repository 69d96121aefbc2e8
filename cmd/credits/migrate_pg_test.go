package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits/internal/pgtest"
)

// `credits migrate` on PostgreSQL applies every migration once and only
// migrates: running it again changes nothing.
func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	for range 2 {
		code, out, errOut := runCmd(t, "migrate", "--db", url)
		if code != 0 || !strings.Contains(out, "migrated") {
			t.Fatalf("migrate: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions, workspaces int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM workspaces`).Scan(&workspaces); err != nil {
		t.Fatal(err)
	}
	if versions < 3 || workspaces != 0 {
		t.Fatalf("%d migrations applied, %d workspaces (migrate must only migrate)", versions, workspaces)
	}
}
