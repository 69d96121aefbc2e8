package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
	"github.com/credits-dev/credits/storetest"
)

// limitedServer is a real server on a real listener, like setup's, with the
// abuse limits and the http.Server settings a test chooses. Its clock drives
// the engine, the session tokens and the rate limits.
func limitedServer(t *testing.T, cfg httpapi.Config, srvCfg func(*http.Server)) (*testBundle, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "credits.db"))
	if err != nil {
		t.Fatal(err)
	}
	clk := storetest.NewClock(epoch)
	eng, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{NowFunc: clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	authn, _, err := auth.New(ctx, st, auth.Options{AdminKey: adminKey, NowFunc: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine, cfg.Auth = eng, authn
	if cfg.RateLimit.Rate > 0 && cfg.RateLimit.NowFunc == nil {
		cfg.RateLimit.NowFunc = clk.Now
	}
	api := httpapi.New(cfg)
	srv := httptest.NewUnstartedServer(api)
	if srvCfg != nil {
		srvCfg(srv.Config)
	}
	srv.Start()
	t.Cleanup(func() {
		api.Drain()
		srv.CloseClientConnections()
		srv.Close()
		eng.Close()
		st.Close()
	})
	return &testBundle{url: srv.URL, clock: clk, engine: eng, store: st, auth: authn, client: &http.Client{}, api: api}, srv
}
