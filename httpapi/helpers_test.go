package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/internal/testserver"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
	"github.com/credits-dev/credits/storetest"
)

const adminKey = testserver.AdminKey

// testBundle is a real server on a real listener over a real SQLite store,
// with a clock the test moves (see internal/testserver).
type testBundle struct {
	url    string
	clock  *storetest.Clock
	engine *ledger.Engine
	store  *sqlite.Store
	auth   *auth.Authenticator
	client *http.Client
	api    *httpapi.Server
}

var epoch = testserver.Epoch

type setupOpts struct {
	keepAlive time.Duration
}

func setup(t testing.TB, opts ...setupOpts) *testBundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	srv := testserver.Start(t, testserver.Options{KeepAlive: o.keepAlive})
	return &testBundle{url: srv.URL, clock: srv.Clock, engine: srv.Engine, store: srv.Store, auth: srv.Auth, client: &http.Client{}, api: srv.API}
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// decode decodes the body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// req is one request; headers are "Name: value" strings.
func (b *testBundle) req(t *testing.T, method, path, secret string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// wantProblem asserts a problem+json answer with a status, a code and, if
// given, the field it names.
func wantProblem(t *testing.T, r response, status int, code, field string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	p := r.json(t)
	if p["code"] != code || p["status"] != float64(status) || p["type"] == "" || p["title"] == "" || p["detail"] == "" {
		t.Fatalf("problem %v, want code %s", p, code)
	}
	if field != "" && p["field"] != field {
		t.Fatalf("problem names field %v, want %q (%v)", p["field"], field, p["detail"])
	}
	return p
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// createWorkspace makes a workspace through the API.
func (b *testBundle) createWorkspace(t *testing.T, id, plan string) {
	t.Helper()
	body := map[string]any{"id": id, "name": "Workspace " + id}
	if plan != "" {
		body["plan"] = plan
	}
	wantStatus(t, b.req(t, "POST", "/v1/workspaces", adminKey, body), http.StatusCreated)
}

// balance reads a balance through the API.
func (b *testBundle) balance(t *testing.T, id string) credits.Balance {
	t.Helper()
	r := b.req(t, "GET", "/v1/workspaces/"+id+"/balance", adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	var bal credits.Balance
	r.decode(t, &bal)
	return bal
}

// check asserts the invariants of a workspace from the store.
func (b *testBundle) check(t *testing.T, id string) credits.Balance {
	t.Helper()
	bal := b.balance(t, id)
	if bal.Available+bal.Held+bal.Used != bal.Granted {
		t.Fatalf("available %d + held %d + used %d != granted %d", bal.Available, bal.Held, bal.Used, bal.Granted)
	}
	if err := ledger.Check(context.Background(), b.store); err != nil {
		t.Fatal(err)
	}
	return bal
}

// session mints a session token for a member of a workspace.
func (b *testBundle) session(t *testing.T, ws, member string) string {
	t.Helper()
	r := b.req(t, "POST", "/v1/workspaces/"+ws+"/session-tokens", adminKey, map[string]any{"member_id": member, "ttl_seconds": 600})
	wantStatus(t, r, http.StatusCreated)
	return r.json(t)["token"].(string)
}

// apiKey makes an API key with a scope and returns its secret.
func (b *testBundle) apiKey(t *testing.T, scope string) string {
	t.Helper()
	r := b.req(t, "POST", "/v1/api-keys", adminKey, map[string]any{"name": scope + " key", "scope": scope})
	wantStatus(t, r, http.StatusCreated)
	return r.json(t)["secret"].(string)
}
