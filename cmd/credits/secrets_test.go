package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits/internal/pgtest"
)

// storedSecrets runs a server on db with a generated admin key, makes an API
// key and a session token, and returns the secrets a store must not hold,
// and the hashes it must hold (so that the scan looks at the right data).
func storedSecrets(t *testing.T, db string) (s *server, secrets, hashes []string) {
	t.Helper()
	s = startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, env{})
	m := generatedKey.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no generated admin key in the log:\n%s", s.log)
	}
	admin := m[1]
	var key struct{ Secret string }
	callJSON(t, 201, "POST", s.url+"/v1/api-keys", admin, `{"name":"ci","scope":"service"}`, &key)
	callJSON(t, 201, "POST", s.url+"/v1/workspaces", admin, `{"id":"w","name":"W"}`, nil)
	var tok struct{ Token string }
	callJSON(t, 201, "POST", s.url+"/v1/workspaces/w/session-tokens", key.Secret, `{"member_id":"m1"}`, &tok)
	getBalance(t, s.url, tok.Token, "w")
	for _, sec := range []string{admin, key.Secret} {
		h := sha256.Sum256([]byte(sec))
		hashes = append(hashes, hex.EncodeToString(h[:]))
	}
	// The secrets without their prefixes too: no part of them is stored.
	return s, []string{admin, key.Secret, strings.TrimPrefix(admin, "cra_"), strings.TrimPrefix(key.Secret, "crk_"), tok.Token}, hashes
}

// Secrets are stored only as hashes: the bytes of the SQLite files (the
// database, its write-ahead log and shared memory, the journal), while serving and after
// the server stopped, hold neither the admin key nor an API key's secret.
func TestSecretsStoredOnlyAsHashesSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, secrets, hashes := storedSecrets(t, filepath.Join(dir, "credits.db"))
	scan := func(when string) {
		// The database, its WAL, and the journal's files in their folder.
		var files []string
		var all []byte
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files = append(files, p)
			all = append(all, b...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if bytes.Contains(all, []byte(sec)) {
				t.Errorf("%s: the SQLite files (%v) hold the secret %q", when, files, sec)
			}
		}
		for _, h := range hashes {
			if !bytes.Contains(all, []byte(h)) {
				t.Errorf("%s: the SQLite files (%v) do not hold the hash %s: the scan looks at the wrong data", when, files, h)
			}
		}
	}
	scan("while serving")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	scan("after stopping")
}

// The same on PostgreSQL: no row of any table of the schema, as text, holds
// a secret.
func TestSecretsStoredOnlyAsHashesPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	_, secrets, hashes := storedSecrets(t, db)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 5 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	var all strings.Builder
	for _, tb := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{tb}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range texts {
			all.WriteString(s)
			all.WriteByte('\n')
		}
	}
	for _, sec := range secrets {
		if strings.Contains(all.String(), sec) {
			t.Errorf("a table holds the secret %q", sec)
		}
	}
	for _, h := range hashes {
		if !strings.Contains(all.String(), h) {
			t.Errorf("no table holds the hash %s: the scan looks at the wrong data", h)
		}
	}
}
