package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/credits-dev/credits/internal/testserver"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/web"
)

var demoIDs = []string{"demo-free", "demo-starter", "demo-pro"}

// startDemo is a test server with the demo workspaces, one ordinary
// workspace ("acme", on Free) and, when mount, the demo page.
func startDemo(t *testing.T, mount bool) *testserver.Server {
	t.Helper()
	ts := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	for i, id := range append(append([]string{}, demoIDs...), "acme") {
		plan := []string{"free", "starter", "pro", "free"}[i]
		if _, _, err := ts.Engine.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: id, Name: id, Plan: plan}); err != nil {
			t.Fatal(err)
		}
	}
	if mount {
		web.Mount(ts.API, web.Config{Engine: ts.Engine, Auth: ts.Auth, Workspaces: demoIDs})
	}
	return ts
}

type answer struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, method, url, token, body string, hdr ...string) answer {
	t.Helper()
	a := testserver.Call(t, method, url, token, body, hdr...)
	return answer{a.Status, a.Header, string(a.Body)}
}

func problemCode(t *testing.T, a answer) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json (%s)", ct, a.body)
	}
	var p struct{ Code string }
	if err := json.Unmarshal([]byte(a.body), &p); err != nil {
		t.Fatalf("not a problem: %s", a.body)
	}
	return p.Code
}

func planOf(t *testing.T, ts *testserver.Server, id string) string {
	t.Helper()
	ws, err := ts.Engine.Workspace(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ws.Plan
}

func TestUpgradeOnlyTheDemoWorkspaces(t *testing.T) {
	ts := startDemo(t, true)
	for _, id := range []string{"acme", "nope", "demo-freeX"} {
		a := call(t, "POST", ts.URL+"/demo/workspaces/"+id+"/upgrade", "", "")
		if a.status != http.StatusForbidden || problemCode(t, a) != "forbidden" {
			t.Errorf("upgrade %s: %d %s; want 403 forbidden", id, a.status, a.body)
		}
	}
	// Not with the admin key either: the route is for the demo page only.
	if a := call(t, "POST", ts.URL+"/demo/workspaces/acme/upgrade", testserver.AdminKey, `{"plan":"pro"}`); a.status != http.StatusForbidden {
		t.Errorf("upgrade acme with the admin key: %d %s", a.status, a.body)
	}
	if got := planOf(t, ts, "acme"); got != "free" {
		t.Fatalf("acme is on %s after refused upgrades", got)
	}

	// demo-free: Free → Starter → Pro, each adding the difference now.
	a := call(t, "POST", ts.URL+"/demo/workspaces/demo-free/upgrade", "", "")
	if a.status != http.StatusOK {
		t.Fatalf("upgrade demo-free: %d %s", a.status, a.body)
	}
	var up struct {
		Workspace struct{ Plan string }
		Balance   struct{ Available, Granted int64 }
		From      string
	}
	if err := json.Unmarshal([]byte(a.body), &up); err != nil {
		t.Fatal(err)
	}
	if up.Workspace.Plan != "starter" || up.From != "free" || up.Balance.Available != 1000 || up.Balance.Granted != 1000 {
		t.Errorf("after the first upgrade: %+v", up)
	}
	if a := call(t, "POST", ts.URL+"/demo/workspaces/demo-free/upgrade", "", `{"plan":"pro"}`); a.status != http.StatusOK || !strings.Contains(a.body, `"plan":"pro"`) {
		t.Errorf("upgrade demo-free to pro: %d %s", a.status, a.body)
	}
	if a := call(t, "POST", ts.URL+"/demo/workspaces/demo-free/upgrade", "", ""); a.status != http.StatusConflict || problemCode(t, a) != "conflict" {
		t.Errorf("upgrade past the largest plan: %d %s", a.status, a.body)
	}
	// Never a downgrade, and only known plans and fields.
	if a := call(t, "POST", ts.URL+"/demo/workspaces/demo-starter/upgrade", "", `{"plan":"free"}`); a.status != http.StatusConflict {
		t.Errorf("downgrade: %d %s", a.status, a.body)
	}
	if a := call(t, "POST", ts.URL+"/demo/workspaces/demo-starter/upgrade", "", `{"plan":"gold"}`); a.status != http.StatusBadRequest {
		t.Errorf("unknown plan: %d %s", a.status, a.body)
	}
	if a := call(t, "POST", ts.URL+"/demo/workspaces/demo-starter/upgrade", "", `{"plan":"pro","credits":1}`); a.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", a.status, a.body)
	}
	if got := planOf(t, ts, "demo-starter"); got != "starter" {
		t.Errorf("demo-starter is on %s", got)
	}
	if a := call(t, "GET", ts.URL+"/demo/workspaces/demo-starter/upgrade", "", ""); a.status != http.StatusMethodNotAllowed {
		t.Errorf("GET upgrade: %d", a.status)
	}
}

func TestNoDemoRoutesWithoutDemo(t *testing.T) {
	ts := startDemo(t, false) // what `credits serve` without --demo mounts
	for _, r := range []struct{ method, path string }{
		{"POST", "/demo/workspaces/demo-free/upgrade"},
		{"GET", "/demo/sessions"},
		{"GET", "/demo/avatars"},
		{"GET", "/"},
		{"GET", "/assets/app.js"},
	} {
		a := call(t, r.method, ts.URL+r.path, "", "")
		if a.status != http.StatusNotFound || problemCode(t, a) != "not_found" {
			t.Errorf("%s %s without --demo: %d %s; want 404", r.method, r.path, a.status, a.body)
		}
	}
	if got := planOf(t, ts, "demo-free"); got != "free" {
		t.Errorf("demo-free is on %s", got)
	}
}

var tokenRE = regexp.MustCompile(`"token":"([^"]+)"`)

func TestThePageHoldsSessionTokensNeverTheAdminKey(t *testing.T) {
	ts := startDemo(t, true)
	page := call(t, "GET", ts.URL+"/", "", "")
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", page.status, page.header.Get("Content-Type"))
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	if cc := page.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the page (it holds tokens) has Cache-Control %q", cc)
	}
	// Everything the browser can fetch from the page's own routes.
	all := page.body
	for _, p := range []string{"/assets/app.js", "/assets/app.css", "/assets/favicon.svg", "/demo/sessions", "/demo/avatars"} {
		a := call(t, "GET", ts.URL+p, "", "")
		if a.status != http.StatusOK {
			t.Fatalf("GET %s: %d", p, a.status)
		}
		all += a.body
	}
	if strings.Contains(all, testserver.AdminKey) {
		t.Fatal("the page or its routes hold the admin key")
	}
	// No CDN, no network: nothing names another server (but SVG's
	// namespace, which is a name, not a fetch).
	if rest := strings.ReplaceAll(all, "http://www.w3.org/2000/svg", ""); strings.Contains(rest, "http://") || strings.Contains(rest, "https://") || strings.Contains(rest, `"//`) {
		t.Error("the page or its assets name another server")
	}

	// The page's tokens: one per demo workspace, each good for its own
	// workspace's balance and nothing an admin does.
	toks := tokenRE.FindAllStringSubmatch(page.body, -1)
	if len(toks) != len(demoIDs) {
		t.Fatalf("the page has %d session tokens, want %d", len(toks), len(demoIDs))
	}
	for i, m := range toks {
		tok := m[1]
		own, other := demoIDs[i], demoIDs[(i+1)%len(demoIDs)]
		if a := call(t, "GET", ts.URL+"/v1/workspaces/"+own+"/balance", tok, ""); a.status != http.StatusOK {
			t.Errorf("token %d on its workspace %s: %d %s", i, own, a.status, a.body)
		}
		if a := call(t, "GET", ts.URL+"/v1/workspaces/"+other+"/balance", tok, ""); a.status != http.StatusForbidden {
			t.Errorf("token for %s on %s: %d", own, other, a.status)
		}
		if a := call(t, "PUT", ts.URL+"/v1/workspaces/"+own+"/plan", tok, `{"plan":"pro"}`); a.status != http.StatusForbidden {
			t.Errorf("token for %s changing the plan: %d", own, a.status)
		}
		if a := call(t, "GET", ts.URL+"/v1/workspaces/acme/ledger", tok, ""); a.status != http.StatusForbidden {
			t.Errorf("token for %s reading acme's ledger: %d", own, a.status)
		}
	}
}

func TestAssets(t *testing.T) {
	ts := startDemo(t, true)
	a := call(t, "GET", ts.URL+"/assets/app.js", "", "")
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/javascript") || a.header.Get("ETag") == "" {
		t.Fatalf("app.js: %d %v", a.status, a.header)
	}
	if b := call(t, "GET", ts.URL+"/assets/app.js", "", "", "If-None-Match", a.header.Get("ETag")); b.status != http.StatusNotModified {
		t.Errorf("app.js with its ETag: %d, want 304", b.status)
	}
	if b := call(t, "GET", ts.URL+"/assets/nope.js", "", ""); b.status != http.StatusNotFound {
		t.Errorf("unknown asset: %d", b.status)
	}
	if b := call(t, "GET", ts.URL+"/assets/..%2fweb.go", "", ""); b.status != http.StatusNotFound {
		t.Errorf("path outside the assets: %d", b.status)
	}
	var lib struct {
		Avatars []struct {
			ID, Name string
			Image    struct {
				MimeType   string `json:"mime_type"`
				Width      int
				DataBase64 string `json:"data_base64"`
			}
		}
	}
	av := call(t, "GET", ts.URL+"/demo/avatars", "", "")
	if err := json.Unmarshal([]byte(av.body), &lib); err != nil {
		t.Fatal(err)
	}
	if len(lib.Avatars) != 12 || lib.Avatars[0].Image.MimeType != "image/png" || lib.Avatars[0].Image.Width != 256 || lib.Avatars[0].Image.DataBase64 == "" {
		t.Errorf("avatar library: %d avatars, first %+v", len(lib.Avatars), lib.Avatars[0].ID)
	}
	s := call(t, "GET", ts.URL+"/demo/sessions", "", "")
	if s.status != http.StatusOK || len(tokenRE.FindAllString(s.body, -1)) != 3 || s.header.Get("Cache-Control") != "no-store" {
		t.Errorf("sessions: %d %s %v", s.status, s.body, s.header)
	}
}
