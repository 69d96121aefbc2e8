package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credits-dev/credits/internal/testserver"
)

const testAdminKey = "test-admin-key-0123456789"

// syncBuffer is a bytes.Buffer the server's log can write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a fake environment for ParseFlags.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// server is `credits serve` running in-process.
type server struct {
	url    string
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startServe parses args like the command line does and runs the server
// until it listens. It fails the test if Run returns first.
func startServe(t *testing.T, args []string, e env) *server {
	t.Helper()
	s, err := tryServe(t, args, e)
	if err != nil {
		t.Fatalf("serve %q: %v\nlog:\n%s", args, err, s.log)
	}
	return s
}

// tryServe is startServe that returns Run's error when the server stops
// before it listens; ReadyFunc must then never have been called.
func tryServe(t *testing.T, args []string, e env) (*server, error) {
	t.Helper()
	s := &server{log: &syncBuffer{}, done: make(chan error, 1)}
	cmd := &ServeCommand{Stdout: io.Discard, Stderr: s.log}
	if err := cmd.ParseFlags(args, e.get); err != nil {
		t.Fatalf("ParseFlags(%q): %v", args, err)
	}
	cmd.DrainTimeout = 5 * time.Second
	ready := make(chan string, 1)
	var called sync.Once
	cmd.ReadyFunc = func(addr string) {
		called.Do(func() { ready <- addr })
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- cmd.Run(ctx) }()
	select {
	case addr := <-ready:
		s.url = "http://" + addr
		t.Cleanup(func() { s.stop(t) })
		return s, nil
	case err := <-s.done:
		cancel()
		select {
		case addr := <-ready:
			t.Errorf("ReadyFunc was called (%s) though Run failed", addr)
		default:
		}
		if err == nil {
			err = errors.New("Run returned nil before listening")
		}
		return s, err
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("serve %q did not listen within 20 s\nlog:\n%s", args, s.log)
		return nil, nil
	}
}

// stop cancels the server's context and returns Run's result.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(15 * time.Second):
			s.err = errors.New("Run did not return within 15 s of the cancel")
		}
	})
	return s.err
}

// call makes one request; body is JSON text ("" for none). hdr holds header
// name, value pairs.
func call(t *testing.T, method, url, key, body string, hdr ...string) (int, []byte) {
	t.Helper()
	a := testserver.Call(t, method, url, key, body, hdr...)
	return a.Status, a.Body
}

// callJSON is call that wants status and decodes the answer into out.
func callJSON(t *testing.T, want int, method, url, key, body string, out any, hdr ...string) {
	t.Helper()
	code, b := call(t, method, url, key, body, hdr...)
	if code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
}

type balance struct {
	WorkspaceID    string `json:"workspace_id"`
	Plan           string `json:"plan"`
	MonthlyCredits int64  `json:"monthly_credits"`
	Granted        int64  `json:"granted"`
	Available      int64  `json:"available"`
	Held           int64  `json:"held"`
	Used           int64  `json:"used"`
}

func getBalance(t *testing.T, base, key, ws string) balance {
	t.Helper()
	var b balance
	callJSON(t, 200, "GET", base+"/v1/workspaces/"+ws+"/balance", key, "", &b)
	if b.Available+b.Held+b.Used != b.Granted {
		t.Errorf("%s: available %d + held %d + used %d != granted %d", ws, b.Available, b.Held, b.Used, b.Granted)
	}
	return b
}

func TestServeHealthzAndDrain(t *testing.T) {
	db := filepath.Join(t.TempDir(), "credits.db")
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, env{"CREDITS_ADMIN_KEY": testAdminKey})
	if code, b := call(t, "GET", s.url+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz: %d %s", code, b)
	}
	var cat struct {
		Operations []struct{ ID string } `json:"operations"`
		Plans      []struct{ ID string } `json:"plans"`
	}
	callJSON(t, 200, "GET", s.url+"/v1/catalog", "", "", &cat)
	if len(cat.Operations) != 5 || len(cat.Plans) != 3 || cat.Plans[0].ID != "free" {
		t.Errorf("catalog: %+v, want the built-in one", cat)
	}
	// Without --demo there is no page.
	if code, _ := call(t, "GET", s.url+"/", "", ""); code != 404 {
		t.Errorf("GET / without --demo: %d, want 404", code)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	log := s.log.String()
	for _, s := range []string{"msg=listening", "msg=draining", "msg=stopped"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Error("the server still answers after Run returned")
	}
}

func TestServeEnvironmentDefaults(t *testing.T) {
	db := filepath.Join(t.TempDir(), "env.db")
	s := startServe(t, nil, env{"CREDITS_ADDR": "127.0.0.1:0", "CREDITS_DB": db, "CREDITS_DEMO": "1", "CREDITS_ADMIN_KEY": testAdminKey})
	getBalance(t, s.url, testAdminKey, "demo-pro")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("CREDITS_DB was not used: %v", err)
	}
	if strings.Contains(s.log.String(), "admin_key=") {
		t.Error("a key was generated although CREDITS_ADMIN_KEY is set")
	}
}

func TestServeDemo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	args := []string{"--addr", "127.0.0.1:0", "--db", db, "--demo"}
	e := env{"CREDITS_ADMIN_KEY": testAdminKey}
	want := map[string]int64{"demo-free": 250, "demo-starter": 1000, "demo-pro": 5000}

	s := startServe(t, args, e)
	for ws, credits := range want {
		b := getBalance(t, s.url, testAdminKey, ws)
		if b.MonthlyCredits != credits || b.Granted != credits || b.Available != credits || b.Used != 0 {
			t.Errorf("%s: %+v, want %d credits, all available", ws, b, credits)
		}
	}
	resp := testserver.Call(t, "GET", s.url+"/", "", "")
	page := resp.Body
	if resp.Status != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte("<html")) {
		t.Errorf("GET /: %d %q, want an HTML page:\n%.300s", resp.Status, resp.Header.Get("Content-Type"), page)
	}
	for ws := range want {
		if !bytes.Contains(page, []byte(ws)) {
			t.Errorf("the page does not mention %s", ws)
		}
	}
	if bytes.Contains(page, []byte(testAdminKey)) {
		t.Error("the demo page holds the admin key")
	}
	callJSON(t, 201, "POST", s.url+"/v1/workspaces/demo-free/charges", testAdminKey,
		`{"operation":"section_generation","capture":true}`, nil, "Idempotency-Key", "demo-1")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	// A second start keeps the workspaces and their balances.
	s = startServe(t, args, e)
	if b := getBalance(t, s.url, testAdminKey, "demo-free"); b.Available != 240 || b.Used != 10 {
		t.Errorf("demo-free after restart: %+v, want 240 available, 10 used", b)
	}
	for _, ws := range []string{"demo-starter", "demo-pro"} {
		if b := getBalance(t, s.url, testAdminKey, ws); b.Available != want[ws] || b.Used != 0 {
			t.Errorf("%s after restart: %+v", ws, b)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

var generatedKey = regexp.MustCompile(`admin_key=(\S+)`)

func TestServeGeneratedAdminKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gen.db")
	args := []string{"--addr", "127.0.0.1:0", "--db", db}

	s := startServe(t, args, env{})
	log := s.log.String()
	m := generatedKey.FindAllStringSubmatch(log, -1)
	if len(m) != 1 {
		t.Fatalf("want the generated key printed once, found %d times in:\n%s", len(m), log)
	}
	key := m[0][1]
	if code, b := call(t, "GET", s.url+"/v1/api-keys", key, ""); code != 200 {
		t.Errorf("generated key: %d %s", code, b)
	}
	if code, _ := call(t, "GET", s.url+"/v1/api-keys", key+"x", ""); code != 401 {
		t.Errorf("wrong key: %d, want 401", code)
	}
	if code, _ := call(t, "GET", s.url+"/v1/api-keys", "", ""); code != 401 {
		t.Errorf("no key: %d, want 401", code)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	// Only the key's hash is stored.
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(`SELECT COUNT(*) FROM settings WHERE value LIKE '%' || ? || '%'`, strings.TrimPrefix(key, "cra_")).Scan(&n); err != nil || n != 0 {
		t.Errorf("the settings hold the key in clear (%d rows, %v)", n, err)
	}
	conn.Close()

	s = startServe(t, args, env{})
	if log := s.log.String(); strings.Contains(log, "admin_key") || strings.Contains(log, key) {
		t.Errorf("the restart printed a key:\n%s", log)
	}
	if code, b := call(t, "GET", s.url+"/v1/api-keys", key, ""); code != 200 {
		t.Errorf("the first key after a restart: %d %s", code, b)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

// A catalog that keeps the built-in operations and plans, for editing.
const okCatalog = `operations:
  - {id: content_rewrite, name: Content rewriting, cost: 1}
plans:
  - {id: free, name: Free, monthly_credits: 250, price_cents: 0}
  - {id: starter, name: Starter, monthly_credits: 1000, price_cents: 4900}
  - {id: pro, name: Pro, monthly_credits: 5000, price_cents: 7900}
`

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeConfig(t *testing.T) {
	path := writeFile(t, "ok.yaml", okCatalog)
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "c.db"), "--config", path}, env{"CREDITS_ADMIN_KEY": testAdminKey})
	var cat struct {
		Operations []struct{ ID string } `json:"operations"`
	}
	callJSON(t, 200, "GET", s.url+"/v1/catalog", "", "", &cat)
	if len(cat.Operations) != 1 || cat.Operations[0].ID != "content_rewrite" {
		t.Errorf("catalog operations %+v, want the file's", cat.Operations)
	}
	code, b := call(t, "POST", s.url+"/v1/estimate", "", `{"items":[{"operation":"image_1k","count":1}]}`)
	if code != 400 {
		t.Errorf("estimate of an operation the file drops: %d %s, want 400", code, b)
	}
}

func TestServeInvalidConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // besides the file name
	}{
		{"unknown key", strings.Replace(okCatalog, "cost: 1}", "cost: 1, colour: red}", 1), []string{"colour"}},
		{"missing cost", strings.Replace(okCatalog, ", cost: 1}", "}", 1), []string{"operations[0]", "content_rewrite", "cost", "required"}},
		{"plans not ascending", strings.Replace(okCatalog, "monthly_credits: 5000", "monthly_credits: 500", 1), []string{"plans[2]", "monthly_credits", "ascending"}},
		{"float cost", strings.Replace(okCatalog, "cost: 1}", "cost: 1.5}", 1), []string{"operations[0]", "cost", "1.5"}},
		{"bad id", strings.Replace(okCatalog, "id: pro,", "id: Pro-Plan,", 1), []string{"plans[2]", "id"}},
		{"not yaml", "operations: [", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "catalog.yaml", tt.yaml)
			db := filepath.Join(t.TempDir(), "c.db")
			args := []string{"--addr", "127.0.0.1:0", "--db", db, "--config", path}
			_, err := tryServe(t, args, env{"CREDITS_ADMIN_KEY": testAdminKey})
			if err == nil {
				t.Fatal("serve started with an invalid catalog")
			}
			for _, s := range append([]string{path}, tt.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}

			// The same through Run: a non-zero exit and the message on stderr.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			code := Run(ctx, append([]string{"serve"}, args...), &out, &errb)
			if code == 0 {
				t.Errorf("Run: exit 0, want non-zero")
			}
			if !strings.Contains(errb.String(), path) || strings.Contains(errb.String(), "listening") {
				t.Errorf("Run's stderr:\n%s\nwant the error naming %s, and no listening", errb.String(), path)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		_, err := tryServe(t, []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "c.db"), "--config", path}, env{})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("error %v, want one naming %s", err, path)
		}
	})
}

func TestServeRefusesDroppedPlan(t *testing.T) {
	db := filepath.Join(t.TempDir(), "drop.db")
	e := env{"CREDITS_ADMIN_KEY": testAdminKey}
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, e)
	callJSON(t, 201, "POST", s.url+"/v1/workspaces", testAdminKey, `{"id":"acme","name":"Acme","plan":"starter"}`, nil)
	callJSON(t, 201, "POST", s.url+"/v1/workspaces", testAdminKey, `{"id":"tiny","name":"Tiny"}`, nil)
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	path := writeFile(t, "nostarter.yaml", strings.Replace(okCatalog, "  - {id: starter, name: Starter, monthly_credits: 1000, price_cents: 4900}\n", "", 1))
	args := []string{"--addr", "127.0.0.1:0", "--db", db, "--config", path}
	_, err := tryServe(t, args, e)
	if err == nil {
		t.Fatal("serve started with a catalog that drops a plan in use")
	}
	for _, want := range []string{path, `"starter"`, "1 workspace"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), `"free"`) {
		t.Errorf("error %q names a plan the file keeps", err)
	}

	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code := Run(ctx, append([]string{"serve"}, args...), &out, &errb); code == 0 || !strings.Contains(errb.String(), "1 workspace") {
		t.Errorf("Run: exit %d, stderr %q", code, errb.String())
	}

	// The built-in catalog still starts, with the data intact.
	s = startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, e)
	if b := getBalance(t, s.url, testAdminKey, "acme"); b.Plan != "starter" || b.Available != 1000 {
		t.Errorf("acme: %+v", b)
	}
}

func TestMigrate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	for i := range 2 { // migrating twice is harmless
		code, out, errOut := runCmd(t, "migrate", "--db", db)
		if code != 0 || !strings.Contains(out, "migrated") || !strings.Contains(out, db) {
			t.Fatalf("run %d: exit %d, stdout %q, stderr %q", i+1, code, out, errOut)
		}
	}
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tables := map[string]bool{}
	rows, err := conn.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables[n] = true
	}
	rows.Close()
	for _, want := range []string{"schema_migrations", "workspaces", "charges", "entries", "idempotency", "settings", "api_keys"} {
		if !tables[want] {
			t.Errorf("table %s missing; have %v", want, tables)
		}
	}
	var v int
	if err := conn.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v < 1 {
		t.Errorf("schema version %d, %v", v, err)
	}

	// The migrated file serves.
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, env{"CREDITS_ADMIN_KEY": testAdminKey})
	if code, _ := call(t, "GET", s.url+"/healthz", "", ""); code != 200 {
		t.Errorf("healthz after migrate: %d", code)
	}

	if code, _, errOut := runCmd(t, "migrate", "--db", db, "extra"); code != 2 || !strings.Contains(errOut, "no arguments") {
		t.Errorf("migrate with an argument: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "migrate", "--db", "postgres://u:secret@localhost/x"); code == 0 || strings.Contains(errOut, "secret") {
		t.Errorf("migrate postgres: exit %d, stderr %q (want non-zero, password hidden)", code, errOut)
	}
}

func TestCommands(t *testing.T) {
	code, out, errOut := runCmd(t, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "Usage:") || out != "" {
		t.Errorf("unknown command: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t); code != 2 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no command: exit %d, stderr %q", code, errOut)
	}
	for _, v := range []string{"version", "--version"} {
		if code, out, _ := runCmd(t, v); code != 0 || out != "credits "+version+"\n" {
			t.Errorf("%s: exit %d, stdout %q", v, code, out)
		}
	}
	if code, out, _ := runCmd(t, "help"); code != 0 || !strings.Contains(out, "credits serve") {
		t.Errorf("help: exit %d, stdout %q", code, out)
	}
	if code, _, errOut := runCmd(t, "serve", "--addr", "127.0.0.1:0", "stray"); code != 2 || !strings.Contains(errOut, "no arguments") {
		t.Errorf("serve with an argument: exit %d, stderr %q", code, errOut)
	}
	// Exits 1 today (flag errors are not usageErrors); 2 would match the
	// other command-line mistakes.
	if code, _, errOut := runCmd(t, "serve", "--no-such-flag"); code == 0 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("serve with an unknown flag: exit %d, stderr %q", code, errOut)
	}
}
