package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/config"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/web"
)

// ServeCommand runs the HTTP API until its context ends, then drains.
type ServeCommand struct {
	Addr     string
	DB       string
	Config   string
	Demo     bool
	AdminKey string
	// AI configures the AI operations' provider (CREDITS_AI_*).
	AI AIConfig
	// DrainTimeout bounds the graceful shutdown (30 s).
	DrainTimeout time.Duration
	// SweepInterval is how often expired holds are swept (1 s).
	SweepInterval time.Duration

	Stdout, Stderr io.Writer
	// ReadyFunc, if set, is called with the bound address once the server
	// listens (tests listen on port 0).
	ReadyFunc func(addr string)
}

// ParseFlags reads flags, with the environment as their defaults.
func (c *ServeCommand) ParseFlags(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("credits serve", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.StringVar(&c.Addr, "addr", envOr(getenv, "CREDITS_ADDR", "127.0.0.1:8080"), "listen address (CREDITS_ADDR)")
	fs.StringVar(&c.DB, "db", envOr(getenv, "CREDITS_DB", "credits.db"), "SQLite file path, or a postgres:// URL (CREDITS_DB)")
	fs.StringVar(&c.Config, "config", getenv("CREDITS_CONFIG"), "YAML file with the catalog and plans (CREDITS_CONFIG)")
	fs.BoolVar(&c.Demo, "demo", getenv("CREDITS_DEMO") == "1" || getenv("CREDITS_DEMO") == "true", "seed demo workspaces and serve the demo page at / (CREDITS_DEMO)")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	c.AdminKey = getenv("CREDITS_ADMIN_KEY")
	return c.AI.parse(getenv)
}

// Run serves until ctx is done, then stops accepting, finishes in-flight
// requests (at most DrainTimeout), closes the store and returns nil.
func (c *ServeCommand) Run(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	cat := credits.DefaultCatalog()
	if c.Config != "" {
		var err error
		if cat, err = config.Load(c.Config); err != nil {
			return err
		}
	}
	st, err := openStore(ctx, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	usage, err := st.PlanUsage(ctx)
	if err != nil {
		return err
	}
	if err := config.CheckPlansInUse(cat, usage); err != nil {
		name := "the built-in catalog"
		if c.Config != "" {
			name = c.Config
		}
		return fmt.Errorf("%s: %w", name, err)
	}

	engine, err := ledger.New(st, cat, ledger.Options{Logger: log, SweepInterval: c.SweepInterval})
	if err != nil {
		return err
	}
	defer engine.Close()
	authn, generated, err := auth.New(ctx, st, auth.Options{AdminKey: c.AdminKey})
	if err != nil {
		return err
	}
	if generated != "" {
		log.Warn("generated the admin key; it is shown only this once, only its hash is stored", "admin_key", generated)
	}
	provider, err := c.AI.provider()
	if err != nil {
		return err
	}
	gateway := ai.NewGateway(ai.GatewayConfig{Engine: engine, Provider: provider, Store: st, Timeout: c.AI.Timeout, Logger: log})
	log.Info("AI provider", "provider", provider.Name(), "timeout", c.AI.Timeout)
	api := httpapi.New(httpapi.Config{Engine: engine, Auth: authn, AI: gateway, Logger: log})
	if c.Demo {
		ids, err := seedDemo(ctx, engine)
		if err != nil {
			return err
		}
		web.Mount(api, web.Config{Engine: engine, Auth: authn, Workspaces: ids})
		log.Info("demo workspaces ready", "workspaces", strings.Join(ids, ","))
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	log.Info("listening", "addr", "http://"+addr, "db", redact(c.DB), "demo", c.Demo)
	if c.ReadyFunc != nil {
		c.ReadyFunc(addr)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("draining")
	api.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("drain timed out; closing connections", "err", err)
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// seedDemo makes one demo workspace per plan (demo-free, demo-starter,
// demo-pro with the built-in catalog), keeping those that exist.
func seedDemo(ctx context.Context, e *ledger.Engine) ([]string, error) {
	var ids []string
	for _, p := range e.Catalog().Plans {
		id := "demo-" + strings.ReplaceAll(p.ID, "_", "-")
		_, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: id, Name: "Demo " + p.Name, Plan: p.ID})
		if err != nil && credits.ErrorCode(err) != credits.CodeConflict {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
