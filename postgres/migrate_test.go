package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/internal/pgtest"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/postgres"
)

// Migration 6 on a database the engine wrote at version 5: the rows, the
// idempotency answers and the ledger come through, and the key columns
// compare byte by byte.
func TestMigrationKeysBytewise(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w", Plan: "starter"}); err != nil {
		t.Fatal(err)
	}
	held, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k1", Operation: "section_generation"})
	if err != nil {
		t.Fatal(err)
	}
	captured, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: "k2", Operation: "content_rewrite", Capture: true})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	st.Close()

	// Back to version 5's columns: the default collation, answers as jsonb.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		ALTER TABLE cycles DROP CONSTRAINT cycles_workspace_id_fkey;
		ALTER TABLE workspaces ALTER COLUMN id TYPE text COLLATE "default";
		ALTER TABLE cycles ALTER COLUMN workspace_id TYPE text COLLATE "default";
		ALTER TABLE cycles ADD CONSTRAINT cycles_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces (id);
		ALTER TABLE charges ALTER COLUMN id TYPE text COLLATE "default", ALTER COLUMN workspace_id TYPE text COLLATE "default";
		ALTER TABLE entries ALTER COLUMN workspace_id TYPE text COLLATE "default", ALTER COLUMN charge_id TYPE text COLLATE "default";
		ALTER TABLE ai_requests ALTER COLUMN workspace_id TYPE text COLLATE "default", ALTER COLUMN key TYPE text COLLATE "default";
		ALTER TABLE idempotency ALTER COLUMN workspace_id TYPE text COLLATE "default", ALTER COLUMN key TYPE text COLLATE "default",
			ALTER COLUMN result TYPE jsonb USING result::jsonb;
		DELETE FROM schema_migrations WHERE version = 6`); err != nil {
		t.Fatal(err)
	}

	st, err = postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := conn.Query(ctx, `SELECT table_name || '.' || column_name, COALESCE(collation_name, ''), data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND (table_name, column_name) IN
		(('workspaces','id'), ('cycles','workspace_id'), ('charges','id'), ('charges','workspace_id'), ('entries','workspace_id'),
		 ('entries','charge_id'), ('ai_requests','workspace_id'), ('ai_requests','key'), ('idempotency','workspace_id'), ('idempotency','key'), ('idempotency','result'))`)
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string][2]string{}
	for rows.Next() {
		var name, coll, typ string
		if err := rows.Scan(&name, &coll, &typ); err != nil {
			t.Fatal(err)
		}
		cols[name] = [2]string{coll, typ}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cols) != 11 {
		t.Fatalf("columns found: %v", cols)
	}
	for name, c := range cols {
		if name != "idempotency.result" && c[0] != "C" {
			t.Errorf("%s: collation %q, want C", name, c[0])
		}
		if c[1] != "text" {
			t.Errorf("%s: type %s, want text", name, c[1])
		}
	}

	e, err = ledger.New(st, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// The answers kept at version 5 are given again, and the hold made
	// then is captured now.
	for _, c := range []struct {
		key, op string
		want    credits.Charge
	}{{"k1", "section_generation", *held.Charge}, {"k2", "content_rewrite", *captured.Charge}} {
		again, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: c.key, Operation: c.op, Capture: c.key == "k2"})
		if err != nil {
			t.Fatal(err)
		}
		if again.Charge.ID != c.want.ID || again.Charge.Status != c.want.Status || again.Charge.Cost != c.want.Cost {
			t.Errorf("retry of %s: %+v, want %+v", c.key, again.Charge, c.want)
		}
	}
	if _, err := e.Capture(ctx, held.Charge.ID); err != nil {
		t.Fatal(err)
	}
	bal, err := e.Balance(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if bal.Used != 11 || bal.Held != 0 || bal.Available != 989 {
		t.Fatalf("balance %+v", bal)
	}
	if err := ledger.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
}
