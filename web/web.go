// Package web serves the demo builder page (embedded files, no build step)
// for `credits serve --demo`: a builder canvas with an AI chatbox, the live
// balance, an image modal, avatars, usage and the plan estimator.
//
// The page talks to the public API with a workspace session token minted
// here for the seeded demo workspaces; it never sees the admin key. The only
// routes of its own are demo-only: refreshed session tokens, the avatar
// library, and an upgrade button for the demo workspaces.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
)

//go:embed index.html app.js app.css favicon.svg
var files embed.FS

var page = template.Must(template.ParseFS(files, "index.html"))

// SessionTTL is how long the page's session tokens last; the page asks
// GET /demo/sessions for fresh ones when they expire.
const SessionTTL = time.Hour

// DemoMember is the member the page's session tokens charge as.
const DemoMember = "demo-member"

// csp keeps the page to its own origin: no CDN, no network beyond the API.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Config wires the page.
type Config struct {
	Engine     *ledger.Engine
	Auth       *auth.Authenticator
	Workspaces []string // the demo workspaces, smallest plan first
	Logger     *slog.Logger
}

// demoSession is what the page gets for one demo workspace: a short-lived
// session token, never the admin key.
type demoSession struct {
	WorkspaceID string    `json:"workspace_id"`
	Name        string    `json:"name"`
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

type site struct {
	cfg     Config
	assets  map[string]asset
	version string // of the assets, for cache busting
	avatars []byte // the library as JSON
}

// Mount serves the page at / and its demo routes on the API's mux. Call it
// only with --demo: without it none of these routes exist.
func Mount(api *httpapi.Server, cfg Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &site{cfg: cfg, assets: map[string]asset{}}
	all := sha256.New()
	for name, ct := range map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"app.css":     "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		sum := sha256.Sum256(b)
		s.assets[name] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	for _, name := range []string{"app.js", "app.css", "favicon.svg"} {
		all.Write([]byte(s.assets[name].etag))
	}
	s.version = hex.EncodeToString(all.Sum(nil)[:6])
	s.avatars = avatarLibrary()

	api.Handle("GET /{$}", httpapi.Public, s.index)
	api.Handle("GET /assets/{name}", httpapi.Public, s.asset)
	api.Handle("GET /demo/sessions", httpapi.Public, s.sessionsHandler)
	api.Handle("GET /demo/avatars", httpapi.Public, s.avatarsHandler)
	api.Handle("POST /demo/workspaces/{id}/upgrade", httpapi.Public, s.upgrade)
}

func (s *site) sessions(ctx context.Context) ([]demoSession, error) {
	out := make([]demoSession, 0, len(s.cfg.Workspaces))
	for _, id := range s.cfg.Workspaces {
		tok, exp, err := s.cfg.Auth.IssueSession(id, DemoMember, SessionTTL)
		if err != nil {
			return nil, err
		}
		name := id
		if ws, err := s.cfg.Engine.Workspace(ctx, id); err == nil {
			name = ws.Name
		}
		out = append(out, demoSession{WorkspaceID: id, Name: name, Token: tok, ExpiresAt: exp.UTC()})
	}
	return out, nil
}

func (s *site) index(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions(r.Context())
	if err != nil {
		s.cfg.Logger.Error("demo page: minting session tokens", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, credits.CodeUnavailable, "could not mint the demo session tokens; retry")
		return
	}
	data, err := json.Marshal(sess) // escapes <, > and &: safe inside <script>
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, credits.CodeInternal, "encoding the sessions")
		return
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, map[string]any{"Sessions": template.JS(data), "Version": s.version}); err != nil {
		writeProblem(w, http.StatusInternalServerError, credits.CodeInternal, "rendering the page")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

func (s *site) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.PathValue("name")]
	if !ok {
		writeProblem(w, http.StatusNotFound, credits.CodeNotFound, "no such asset")
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func (s *site) sessionsHandler(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions(r.Context())
	if err != nil {
		s.cfg.Logger.Error("demo page: minting session tokens", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, credits.CodeUnavailable, "could not mint the demo session tokens; retry")
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

type libraryAvatar struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Image ai.Image `json:"image"`
}

func avatarLibrary() []byte {
	var lib []libraryAvatar
	for _, a := range ai.Avatars() {
		res := ai.SelectAvatar("", a.ID)
		lib = append(lib, libraryAvatar{ID: a.ID, Name: a.Name, Image: *res.Image})
	}
	b, _ := json.Marshal(map[string]any{"avatars": lib})
	return b
}

func (s *site) avatarsHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.avatars)
}

// upgradeRequest is the optional body of POST /demo/workspaces/{id}/upgrade.
type upgradeRequest struct {
	Plan string `json:"plan"`
}

// upgradeResponse is what the upgrade answers.
type upgradeResponse struct {
	Workspace credits.Workspace `json:"workspace"`
	Balance   credits.Balance   `json:"balance"`
	From      string            `json:"from"`
}

// upgrade moves a demo workspace to a higher plan (the named one, else the
// next): what the page's "Upgrade" button does where a real builder would
// take payment. Only the seeded demo workspaces; never a downgrade.
func (s *site) upgrade(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !slices.Contains(s.cfg.Workspaces, id) {
		writeProblem(w, http.StatusForbidden, credits.CodeForbidden, "only the demo workspaces can be upgraded from the demo page")
		return
	}
	var req upgradeRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, credits.CodeInvalidRequest, "reading the body")
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, http.StatusBadRequest, credits.CodeInvalidRequest, "the body must be {\"plan\"?}: "+err.Error())
			return
		}
	}
	ctx := r.Context()
	ws, err := s.cfg.Engine.Workspace(ctx, id)
	if err != nil {
		s.engineProblem(w, err)
		return
	}
	plans := s.cfg.Engine.Catalog().Plans
	cur := slices.IndexFunc(plans, func(p credits.Plan) bool { return p.ID == ws.Plan })
	target := cur + 1
	if req.Plan != "" {
		target = slices.IndexFunc(plans, func(p credits.Plan) bool { return p.ID == req.Plan })
		if target < 0 {
			writeProblem(w, http.StatusBadRequest, credits.CodeInvalidRequest, fmt.Sprintf("unknown plan %q", req.Plan))
			return
		}
		if target <= cur {
			writeProblem(w, http.StatusConflict, credits.CodeConflict, fmt.Sprintf("%q is not a higher plan than %q; the demo only upgrades", req.Plan, ws.Plan))
			return
		}
	}
	if target >= len(plans) {
		writeProblem(w, http.StatusConflict, credits.CodeConflict, fmt.Sprintf("%s is already on the largest plan", id))
		return
	}
	ws2, bal, err := s.cfg.Engine.ChangePlan(ctx, id, plans[target].ID)
	if err != nil {
		s.engineProblem(w, err)
		return
	}
	s.cfg.Logger.Info("demo workspace upgraded", "workspace", id, "from", ws.Plan, "to", ws2.Plan)
	writeJSON(w, http.StatusOK, upgradeResponse{Workspace: ws2, Balance: bal, From: ws.Plan})
}

func (s *site) engineProblem(w http.ResponseWriter, err error) {
	e := credits.AsError(err)
	if e == nil {
		s.cfg.Logger.Error("demo upgrade failed", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, credits.CodeUnavailable, "the store is unavailable; nothing was changed")
		return
	}
	status := http.StatusBadRequest
	switch e.Code {
	case credits.CodeNotFound:
		status = http.StatusNotFound
	case credits.CodeConflict:
		status = http.StatusConflict
	case credits.CodeUnavailable:
		status = http.StatusServiceUnavailable
	}
	writeProblem(w, status, e.Code, e.Message)
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: "urn:credits:problem:" + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
