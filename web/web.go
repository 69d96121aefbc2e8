// Package web serves the demo builder page (embedded files) for
// `credits serve --demo`.
package web

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"time"

	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
)

//go:embed index.html
var files embed.FS

var page = template.Must(template.ParseFS(files, "index.html"))

// Config wires the page.
type Config struct {
	Engine     *ledger.Engine
	Auth       *auth.Authenticator
	Workspaces []string // the demo workspaces, smallest plan first
}

// demoSession is what the page gets for one demo workspace: a short-lived
// session token, never the admin key.
type demoSession struct {
	WorkspaceID string `json:"workspace_id"`
	Token       string `json:"token"`
}

// Mount serves the page at / on the API's mux.
func Mount(api *httpapi.Server, cfg Config) {
	api.Handle("GET /{$}", httpapi.Public, func(w http.ResponseWriter, r *http.Request) {
		var sessions []demoSession
		for _, id := range cfg.Workspaces {
			tok, _, err := cfg.Auth.IssueSession(id, "demo-member", time.Hour)
			if err != nil {
				http.Error(w, "session: "+err.Error(), http.StatusInternalServerError)
				return
			}
			sessions = append(sessions, demoSession{WorkspaceID: id, Token: tok})
		}
		data, _ := json.Marshal(sessions)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = page.Execute(w, map[string]any{"Sessions": template.JS(data)})
	})
}
