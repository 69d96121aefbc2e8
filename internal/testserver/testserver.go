// Package testserver starts a real credits API on a real listener over a
// real SQLite store in a temporary directory, with a clock the test moves.
// Tests of the client and of other front ends use it.
package testserver

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
	"github.com/credits-dev/credits/storetest"
)

// AdminKey is the admin key of every test server.
const AdminKey = "test-admin-key"

// Epoch is where the clock starts.
var Epoch = time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC)

// Server is a running test server.
type Server struct {
	URL    string
	Clock  *storetest.Clock
	Engine *ledger.Engine
	Store  *sqlite.Store
	Auth   *auth.Authenticator
	API    *httpapi.Server
}

// Options tune Start.
type Options struct {
	KeepAlive time.Duration
	// Provider runs AI operations (default: the demo provider).
	Provider ai.Provider
	// AITimeout bounds one AI operation (default 60 s).
	AITimeout time.Duration
}

// Start starts a server that stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "credits.db"))
	if err != nil {
		t.Fatal(err)
	}
	clk := storetest.NewClock(Epoch)
	eng, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{NowFunc: clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	authn, _, err := auth.New(ctx, st, auth.Options{AdminKey: AdminKey, NowFunc: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	provider := opts.Provider
	if provider == nil {
		provider = ai.Demo{}
	}
	gw := ai.NewGateway(ai.GatewayConfig{Engine: eng, Provider: provider, Store: st, Timeout: opts.AITimeout, NowFunc: clk.Now})
	api := httpapi.New(httpapi.Config{Engine: eng, Auth: authn, AI: gw, KeepAlive: opts.KeepAlive})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Drain()
		srv.Close()
		eng.Close()
		st.Close()
	})
	return &Server{URL: srv.URL, Clock: clk, Engine: eng, Store: st, Auth: authn, API: api}
}
