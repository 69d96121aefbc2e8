package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"time"

	"github.com/credits-dev/credits/bench"
)

// BenchCommand runs `credits bench`: a bounded load on the engine, the HTTP
// API and their references, printed as one table (see package bench).
type BenchCommand struct {
	Stdout, Stderr io.Writer
	// Getenv reads CREDITS_ADMIN_KEY for --url (os.Getenv when nil).
	Getenv func(string) string
	// Terminal forces the progress display: nil detects it from Stdout.
	Terminal *bool
}

// Run parses flags, runs the bench and prints the table (and with --json
// writes it). An interrupted run prints the rows it finished.
func (c *BenchCommand) Run(ctx context.Context, args []string) (err error) {
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	fs := flag.NewFlagSet("credits bench", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	cfg := bench.Config{}
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each scenario runs")
	warmup := fs.Duration("warmup", time.Second, "load run before each scenario's --duration and not counted (0: none)")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "run every scenario this many times, in turn, and report each over all its rounds with the spread of its ratio")
	fs.IntVar(&cfg.Workers, "workers", 64, "concurrent callers (HTTP: keep-alive clients)")
	fs.IntVar(&cfg.Workspaces, "workspaces", 10_000, "workspaces of the many shape")
	fs.IntVar(&cfg.Streams, "streams", bench.DefaultStreams, "balance streams open on the workspace of the http/hot+streams row")
	shapes := fs.String("shapes", "many,hot", "load shapes: many (uniform over --workspaces), hot (one workspace)")
	scenarios := fs.String("scenarios", "", "comma list of scenarios or prefixes (default: all available): "+strings.Join(bench.ScenarioNames([]string{bench.ShapeMany, bench.ShapeHot}), ", "))
	fs.StringVar(&cfg.PostgresURL, "pg", "", "postgres:// URL: adds the PostgreSQL rows (each in a schema of its own, dropped afterwards)")
	fs.StringVar(&cfg.ServerURL, "url", "", "run the HTTP rows against this running server (admin key from CREDITS_ADMIN_KEY; start it with --rate-limit 0) instead of starting one")
	jsonFile := fs.String("json", "", "also write the figures as JSON to this file")
	fs.IntVar(&cfg.MaxBatch, "batch", 0, "the in-process engine's MaxBatch (default: the engine's)")
	fs.BoolVar(&cfg.Verify, "verify", false, "after each scenario, check that its store's balances and ledger add up")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole run to this file (go tool pprof -sample_index=alloc_space)")
	traceFile := fs.String("trace", "", "write an execution trace of the whole run to this file (go tool trace): where callers wait")
	memory := fs.Int("memory", 0, "instead of the table: create this many workspaces (engine on SQLite), reading memory at each power of ten, then run pairs across all of them for --duration")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	if *memProfile != "" {
		// Created now, so a bad path fails before the run; written at
		// the end, so it holds every allocation of the run: where the
		// garbage collector's work comes from.
		mf, cerr := os.Create(*memProfile)
		if cerr != nil {
			return cerr
		}
		defer func() { // err is Run's result here
			werr := pprof.Lookup("allocs").WriteTo(mf, 0)
			if cerr := mf.Close(); werr == nil {
				werr = cerr
			}
			if err == nil && werr != nil {
				err = fmt.Errorf("--memprofile: %w", werr)
			}
		}()
	}
	if *memory > 0 {
		rep, err := bench.Memory(ctx, *memory, cfg.Duration, cfg.Workers, c.Stdout)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.Stdout)
		if err := rep.WriteTable(c.Stdout); err != nil {
			return err
		}
		if *jsonFile != "" {
			data, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				return err
			}
			return os.WriteFile(*jsonFile, append(data, '\n'), 0o644)
		}
		return nil
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("bench takes no arguments, got %q", fs.Args())}
	}
	if cfg.Duration <= 0 || cfg.Workers <= 0 || cfg.Workspaces <= 0 || cfg.Rounds <= 0 || cfg.MaxBatch < 0 || *warmup < 0 {
		return usageError{"--duration, --workers, --workspaces and --rounds must be positive, --batch and --warmup not negative"}
	}
	cfg.Warmup = *warmup
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none (the zero Config value means the default)
	}
	cfg.Shapes = splitList(*shapes)
	cfg.Scenarios = splitList(*scenarios)
	if cfg.ServerURL != "" {
		cfg.AdminKey = c.Getenv("CREDITS_ADMIN_KEY")
		if cfg.AdminKey == "" {
			return usageError{"--url needs the server's admin key in CREDITS_ADMIN_KEY"}
		}
	}
	cfg.StartServer = c.startServe
	cfg.Writers = postgresWriters // the engine rows run what serve runs
	cfg.Progress = c.Stdout
	if c.Terminal != nil {
		cfg.Terminal = *c.Terminal
	} else {
		cfg.Terminal = isTerminal(c.Stdout)
	}

	rep, err := bench.Run(ctx, cfg)
	var ue *bench.UsageError
	if errors.As(err, &ue) {
		return usageError{ue.Msg}
	}
	if rep != nil && len(rep.Results) > 0 {
		fmt.Fprintln(c.Stdout)
		if werr := rep.WriteTable(c.Stdout); werr != nil && err == nil {
			err = werr
		}
		if *jsonFile != "" {
			if werr := writeJSONFile(*jsonFile, rep); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func writeJSONFile(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startServe runs `credits serve` in-process on a free local port, as the
// command line would (flags and environment), for the HTTP rows.
func (c *BenchCommand) startServe(ctx context.Context, p bench.ServerParams) (string, func() error, error) {
	log := &lockedBuffer{}
	// No rate limit: the bench is one credential making every request.
	env := map[string]string{"CREDITS_ADMIN_KEY": p.AdminKey, "CREDITS_RATE_LIMIT": "0"}
	cmd := &ServeCommand{Stdout: io.Discard, Stderr: log}
	if err := cmd.ParseFlags([]string{"--addr", "127.0.0.1:0", "--db", p.DB, "--config", p.Config}, func(k string) string { return env[k] }); err != nil {
		return "", nil, err
	}
	cmd.DrainTimeout = 10 * time.Second
	ready := make(chan string, 1)
	cmd.ReadyFunc = func(addr string) { ready <- addr }
	cmd.EngineFunc = p.Engine
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- cmd.Run(sctx) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			if stopErr = <-done; stopErr != nil {
				stopErr = fmt.Errorf("credits serve: %w\n%s", stopErr, log)
			}
		})
		return stopErr
	}
	select {
	case addr := <-ready:
		return "http://" + addr, stop, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("stopped before listening")
		}
		return "", nil, fmt.Errorf("credits serve: %w\n%s", err, log)
	case <-ctx.Done():
		_ = stop()
		return "", nil, ctx.Err()
	}
}

// lockedBuffer keeps the in-process server's log, to show when it fails.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // enough to tell what went wrong
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
