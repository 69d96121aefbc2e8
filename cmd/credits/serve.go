package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
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

// postgresWriters is how many batches an instance has in flight at once on
// PostgreSQL (a SQLite store always has one writer). More writers make
// smaller batches and more transactions that wait on each other's locks.
// credits bench on a 2-core machine with PostgreSQL beside it, 4 s rows,
// pairs/s many (hot): 1 writer 6,857 (9,711), one run; 2 writers 7,601 and
// 7,790 (8,554, 8,558); 3 writers 7,155, 7,173 (6,943, 7,032); 4 writers
// 6,567, 6,739, 6,806 (6,062); 8 writers 4,884, 4,980; 16 writers 3,378,
// 3,379. One writer is best on one hot workspace and worst on many.
const postgresWriters = 2

// ServeCommand runs the HTTP API until its context ends, then drains.
type ServeCommand struct {
	Addr     string
	DB       string
	Config   string
	Demo     bool
	AdminKey string
	// PreviousAdminKey stays valid beside AdminKey until
	// PreviousAdminKeyUntil (CREDITS_ADMIN_KEY_PREVIOUS, …_UNTIL): key
	// rotation without downtime.
	PreviousAdminKey      string
	PreviousAdminKeyUntil time.Time
	// Limits are the abuse limits: rates, stream cap, timeouts.
	Limits Limits
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
	// EngineFunc, if set, is called with the engine and its store once
	// they exist, before the server listens (credits bench reads the
	// writer's counters of a server it runs in its own process).
	EngineFunc func(*ledger.Engine, ledger.Store)
}

// ParseFlags reads flags, with the environment as their defaults.
func (c *ServeCommand) ParseFlags(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("credits serve", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.StringVar(&c.Addr, "addr", envOr(getenv, "CREDITS_ADDR", "127.0.0.1:8080"), "listen address (CREDITS_ADDR)")
	fs.StringVar(&c.DB, "db", envOr(getenv, "CREDITS_DB", "credits.db"), "SQLite file path, or a postgres:// URL (CREDITS_DB)")
	fs.StringVar(&c.Config, "config", getenv("CREDITS_CONFIG"), "YAML file with the catalog and plans (CREDITS_CONFIG)")
	fs.BoolVar(&c.Demo, "demo", getenv("CREDITS_DEMO") == "1" || getenv("CREDITS_DEMO") == "true", "seed demo workspaces and serve the demo page at / (CREDITS_DEMO)")
	lf := c.Limits.flags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	if err := c.Limits.parse(lf); err != nil {
		return err
	}
	c.AdminKey = getenv("CREDITS_ADMIN_KEY")
	if err := c.parseRotation(getenv); err != nil {
		return err
	}
	return c.AI.parse(getenv)
}

// parseRotation reads the previous admin key and its expiry. The expiry is
// required: a previous key valid for ever would be a rotation never done.
func (c *ServeCommand) parseRotation(getenv func(string) string) error {
	c.PreviousAdminKey = getenv("CREDITS_ADMIN_KEY_PREVIOUS")
	until := getenv("CREDITS_ADMIN_KEY_PREVIOUS_UNTIL")
	switch {
	case c.PreviousAdminKey == "" && until == "":
		return nil
	case c.PreviousAdminKey == "":
		return usageError{"CREDITS_ADMIN_KEY_PREVIOUS_UNTIL is set without CREDITS_ADMIN_KEY_PREVIOUS"}
	case until == "":
		return usageError{"CREDITS_ADMIN_KEY_PREVIOUS needs CREDITS_ADMIN_KEY_PREVIOUS_UNTIL: the RFC 3339 time until which the previous key stays valid, like 2025-07-01T00:00:00Z"}
	case c.PreviousAdminKey == c.AdminKey:
		return usageError{"CREDITS_ADMIN_KEY_PREVIOUS is the same as CREDITS_ADMIN_KEY"}
	}
	t, err := time.Parse(time.RFC3339, until)
	if err != nil {
		return usageError{fmt.Sprintf("CREDITS_ADMIN_KEY_PREVIOUS_UNTIL=%q: give an RFC 3339 time, like 2025-07-01T00:00:00Z", until)}
	}
	c.PreviousAdminKeyUntil = t
	return nil
}

// Run serves until ctx is done, then stops accepting, finishes in-flight
// requests (at most DrainTimeout), closes the store and returns nil.
func (c *ServeCommand) Run(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	c.Limits = c.Limits.withDefaults()
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

	engine, err := ledger.New(st, cat, ledger.Options{Logger: log, SweepInterval: c.SweepInterval, Writers: postgresWriters})
	if err != nil {
		return err
	}
	defer engine.Close()
	if c.EngineFunc != nil {
		c.EngineFunc(engine, st)
	}
	authn, generated, err := auth.New(ctx, st, auth.Options{AdminKey: c.AdminKey,
		PreviousAdminKey: c.PreviousAdminKey, PreviousAdminKeyUntil: c.PreviousAdminKeyUntil})
	if err != nil {
		return err
	}
	if c.PreviousAdminKey != "" {
		if time.Now().Before(c.PreviousAdminKeyUntil) {
			log.Info("the previous admin key stays valid until its expiry", "until", c.PreviousAdminKeyUntil.UTC().Format(time.RFC3339))
		} else {
			log.Warn("the previous admin key has expired and is refused; unset CREDITS_ADMIN_KEY_PREVIOUS", "until", c.PreviousAdminKeyUntil.UTC().Format(time.RFC3339))
		}
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
	api := httpapi.New(httpapi.Config{Engine: engine, Auth: authn, AI: gateway, Logger: log,
		RateLimit: c.Limits.rateLimit(), MaxStreamsPerWorkspace: c.Limits.MaxStreams, StreamEvents: c.Limits.StreamEvents, WriteTimeout: c.Limits.WriteTimeout})
	log.Info("abuse limits", c.Limits.logAttrs()...)
	if c.Demo {
		ids, err := seedDemo(ctx, engine)
		if err != nil {
			return err
		}
		web.Mount(api, web.Config{Engine: engine, Auth: authn, Workspaces: ids, Logger: log})
		log.Info("demo workspaces ready", "workspaces", strings.Join(ids, ","))
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	// WriteTimeout stays 0: it would end every balance stream. Each
	// response has its own write deadline instead (Limits.WriteTimeout).
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: c.Limits.ReadHeaderTimeout,
		ReadTimeout:       c.Limits.ReadTimeout,
		IdleTimeout:       c.Limits.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
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

// maxHeaderBytes bounds a request's headers (64 KiB); more gets 431.
const maxHeaderBytes = 64 << 10

// Limits are the abuse limits of `credits serve`. Zero timeouts and a zero
// stream cap take the defaults; a zero Rate is no rate limit.
type Limits struct {
	// Rate is the requests per second each credential (admin key, API
	// key, session, client IP without one) may make; 0 turns limits off.
	Rate float64
	// Burst is how many requests a credential may make at once.
	Burst int
	// MaxStreams caps the open balance streams of one workspace (per
	// instance); negative: no cap.
	MaxStreams int
	// StreamEvents bounds the events per second one workspace's streams
	// get together (per instance); negative: no bound.
	StreamEvents int
	// ReadHeaderTimeout bounds reading a request's headers (and how long a
	// new connection may stay silent), ReadTimeout the whole request,
	// WriteTimeout each write of an answer (a client that stops reading is
	// cut off), IdleTimeout an idle kept-alive connection.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// Defaults of the abuse limits: generous for one builder's backend on one
// key, low enough that one caller cannot take the service.
const (
	defaultRateLimit         = "1000/s"
	defaultMaxStreams        = httpapi.DefaultMaxStreamsPerWorkspace
	defaultStreamEvents      = httpapi.DefaultStreamEvents
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 30 * time.Second
	defaultIdleTimeout       = 120 * time.Second
)

// limitFlags are the abuse-limit flags as given, parsed after fs.Parse so
// that an environment value and a flag are checked alike.
type limitFlags struct {
	rate, burst, streams, events  string
	readHeader, read, write, idle string
}

// flags declares the abuse-limit flags, with the environment as defaults.
func (l *Limits) flags(fs *flag.FlagSet, getenv func(string) string) *limitFlags {
	f := &limitFlags{}
	fs.StringVar(&f.rate, "rate-limit", envOr(getenv, "CREDITS_RATE_LIMIT", defaultRateLimit), "requests per credential: N/s, N/m or N/h; 0 turns limits off (CREDITS_RATE_LIMIT)")
	fs.StringVar(&f.burst, "rate-burst", getenv("CREDITS_RATE_BURST"), "requests a credential may make at once (CREDITS_RATE_BURST; default twice the per-second rate)")
	fs.StringVar(&f.streams, "max-streams", envOr(getenv, "CREDITS_MAX_STREAMS", strconv.Itoa(defaultMaxStreams)), "open balance streams per workspace; 0: no cap (CREDITS_MAX_STREAMS)")
	fs.StringVar(&f.events, "stream-events", envOr(getenv, "CREDITS_STREAM_EVENTS", strconv.Itoa(defaultStreamEvents)), "balance events per second one workspace's streams share; 0: no bound (CREDITS_STREAM_EVENTS)")
	fs.StringVar(&f.readHeader, "read-header-timeout", envOr(getenv, "CREDITS_READ_HEADER_TIMEOUT", defaultReadHeaderTimeout.String()), "time to read a request's headers (CREDITS_READ_HEADER_TIMEOUT)")
	fs.StringVar(&f.read, "read-timeout", envOr(getenv, "CREDITS_READ_TIMEOUT", defaultReadTimeout.String()), "time to read a whole request (CREDITS_READ_TIMEOUT)")
	fs.StringVar(&f.write, "write-timeout", envOr(getenv, "CREDITS_WRITE_TIMEOUT", defaultWriteTimeout.String()), "time for each write of an answer (CREDITS_WRITE_TIMEOUT)")
	fs.StringVar(&f.idle, "idle-timeout", envOr(getenv, "CREDITS_IDLE_TIMEOUT", defaultIdleTimeout.String()), "time an idle connection stays open (CREDITS_IDLE_TIMEOUT)")
	return f
}

// parse checks the abuse-limit flags and fills l.
func (l *Limits) parse(f *limitFlags) error {
	rate, err := parseRate(f.rate)
	if err != nil {
		return usageError{fmt.Sprintf("--rate-limit (CREDITS_RATE_LIMIT) %q: %v", f.rate, err)}
	}
	l.Rate = rate
	l.Burst = max(1, int(math.Ceil(2*rate)))
	if f.burst != "" {
		n, err := strconv.Atoi(f.burst)
		if err != nil || n < 1 || n > 1_000_000 {
			return usageError{fmt.Sprintf("--rate-burst (CREDITS_RATE_BURST) %q: give a whole number from 1 to 1000000", f.burst)}
		}
		l.Burst = n
	}
	n, err := strconv.Atoi(f.streams)
	if err != nil || n < 0 {
		return usageError{fmt.Sprintf("--max-streams (CREDITS_MAX_STREAMS) %q: give a whole number, 0 for no cap", f.streams)}
	}
	l.MaxStreams = n
	if n == 0 {
		l.MaxStreams = -1
	}
	n, err = strconv.Atoi(f.events)
	if err != nil || n < 0 {
		return usageError{fmt.Sprintf("--stream-events (CREDITS_STREAM_EVENTS) %q: give a whole number, 0 for no bound", f.events)}
	}
	l.StreamEvents = n
	if n == 0 {
		l.StreamEvents = -1
	}
	for _, d := range []struct {
		name, env, value string
		to               *time.Duration
	}{
		{"--read-header-timeout", "CREDITS_READ_HEADER_TIMEOUT", f.readHeader, &l.ReadHeaderTimeout},
		{"--read-timeout", "CREDITS_READ_TIMEOUT", f.read, &l.ReadTimeout},
		{"--write-timeout", "CREDITS_WRITE_TIMEOUT", f.write, &l.WriteTimeout},
		{"--idle-timeout", "CREDITS_IDLE_TIMEOUT", f.idle, &l.IdleTimeout},
	} {
		v, err := time.ParseDuration(d.value)
		if err != nil || v <= 0 || v > 24*time.Hour {
			return usageError{fmt.Sprintf("%s (%s) %q: give a duration like 30s, above 0 and at most 24h", d.name, d.env, d.value)}
		}
		*d.to = v
	}
	return nil
}

// parseRate reads "N/s", "N/m" or "N/h" (N may have a fraction) into
// requests per second; "0" (or "off") is no limit.
func parseRate(s string) (float64, error) {
	if s == "0" || s == "off" {
		return 0, nil
	}
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, errors.New(`give a rate like 100/s, 6000/m or 50000/h, or 0 for no limit`)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0 && n <= 1e9) { // also refuses NaN and Inf
		return 0, errors.New(`the count must be a number above 0, like 100/s`)
	}
	switch unit {
	case "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("unknown unit %q: use s, m or h", unit)
}

// withDefaults fills zero timeouts and the stream cap with the defaults.
func (l Limits) withDefaults() Limits {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&l.ReadHeaderTimeout, defaultReadHeaderTimeout},
		{&l.ReadTimeout, defaultReadTimeout},
		{&l.WriteTimeout, defaultWriteTimeout},
		{&l.IdleTimeout, defaultIdleTimeout},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if l.MaxStreams == 0 {
		l.MaxStreams = defaultMaxStreams
	}
	if l.StreamEvents == 0 {
		l.StreamEvents = defaultStreamEvents
	}
	return l
}

func (l Limits) rateLimit() httpapi.RateLimit {
	return httpapi.RateLimit{Rate: l.Rate, Burst: l.Burst}
}

func (l Limits) logAttrs() []any {
	rate := "off"
	if l.Rate > 0 {
		rate = strconv.FormatFloat(l.Rate, 'f', -1, 64) + "/s"
	}
	streams := "no cap"
	if l.MaxStreams > 0 {
		streams = strconv.Itoa(l.MaxStreams)
	}
	events := "no bound"
	if l.StreamEvents > 0 {
		events = strconv.Itoa(l.StreamEvents) + "/s"
	}
	return []any{"rate_limit", rate, "burst", l.Burst, "max_streams_per_workspace", streams, "stream_events_per_workspace", events,
		"read_header_timeout", l.ReadHeaderTimeout, "read_timeout", l.ReadTimeout,
		"write_timeout", l.WriteTimeout, "idle_timeout", l.IdleTimeout}
}
