package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credits-dev/credits/internal/pgtest"
)

// seed serves db in-process and makes a workspace with a captured, a held
// and a released charge; it returns the captured charge's id.
func seed(t *testing.T, db string) string {
	t.Helper()
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, env{"CREDITS_ADMIN_KEY": testAdminKey})
	callJSON(t, 201, "POST", s.url+"/v1/workspaces", testAdminKey, `{"id":"seeded","name":"Seeded","plan":"starter"}`, nil)
	var c struct{ ID string }
	callJSON(t, 201, "POST", s.url+"/v1/workspaces/seeded/charges", testAdminKey, `{"operation":"image_1k","capture":true}`, &c, "Idempotency-Key", "s1")
	callJSON(t, 201, "POST", s.url+"/v1/workspaces/seeded/charges", testAdminKey, `{"operation":"section_generation"}`, nil, "Idempotency-Key", "s2")
	var r struct{ ID string }
	callJSON(t, 201, "POST", s.url+"/v1/workspaces/seeded/charges", testAdminKey, `{"operation":"content_rewrite"}`, &r, "Idempotency-Key", "s3")
	callJSON(t, 200, "POST", s.url+"/v1/charges/"+r.ID+"/release", testAdminKey, "", nil)
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "credits.db")
	captured := seed(t, db)

	code, out, errOut := runCmd(t, "verify", "--db", db)
	if code != 0 || !strings.Contains(out, "1 workspaces, 1 cycles, 6 ledger entries, 3 charges, 3 idempotency records") || !strings.Contains(out, "ok: every invariant holds") {
		t.Fatalf("verify of a healthy database: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "verify", "--db", db, "--json")
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"violations": []`) {
		t.Fatalf("verify --json: exit %d\n%s", code, out)
	}

	// The capture entry of a charge is lost: named, exit 1.
	raw, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DROP TRIGGER entries_no_delete; DELETE FROM entries WHERE type = 'capture' AND charge_id = ?`, captured); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	code, out, errOut = runCmd(t, "verify", "--db", db)
	if code != 1 || !strings.Contains(out, "VIOLATION charge_finish_entries workspace=seeded id="+captured) || !strings.Contains(errOut, "seeded/"+captured) {
		t.Fatalf("verify of a corrupt database: exit %d, want 1 naming %s\n%s%s", code, captured, out, errOut)
	}
	code, out, _ = runCmd(t, "verify", "--db", db, "--json")
	if code != 1 || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, `"id": "`+captured+`"`) {
		t.Fatalf("verify --json of a corrupt database: exit %d\n%s", code, out)
	}
}

func TestVerifyCommandErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.db")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing file", []string{"verify", "--db", missing}, 1, "no such file"},
		{"argument", []string{"verify", "extra"}, 2, "takes no arguments"},
		{"bad flag", []string{"verify", "--nope"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tt.code, errOut, tt.want)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("verify made the database it was asked to check")
	}
}

func TestVerifyCommandPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	seed(t, db)
	code, out, errOut := runCmd(t, "verify", "--db", db)
	if code != 0 || !strings.Contains(out, "1 workspaces, 1 cycles, 6 ledger entries, 3 charges") {
		t.Fatalf("verify on PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
}
