// Package bench is the load runner behind `credits bench`: it measures
// pairs (hold one operation, then capture it) per second and their latency
// on the engine in-process (SQLite, PostgreSQL), on the HTTP API through the
// Go client, and on two references run alongside: the naive baseline a team
// would write by hand (naive.go) and a no-op HTTP handler (http.go).
//
// Every scenario starts from a fresh database (a temp SQLite file, or a
// schema of its own that is dropped afterwards), so rows do not warm each
// other. The run is bounded: each scenario lasts Duration (pairs in flight
// then finish), and the whole run is capped (Cap).
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// Shapes of load.
const (
	ShapeMany = "many" // uniform over Config.Workspaces workspaces
	ShapeHot  = "hot"  // one workspace
)

// benchPlan has so many credits that nothing runs out during a run.
var benchPlan = credits.Plan{ID: "bench", Name: "Bench", MonthlyCredits: credits.MaxCost, PriceCents: 0, Currency: "usd"}

// benchOperation is the operation of every pair.
const benchOperation = "content_rewrite"

// Catalog is the catalog the bench runs on: the built-in operations and one
// plan of a billion monthly credits.
func Catalog() credits.Catalog {
	cat := credits.DefaultCatalog()
	cat.Plans = []credits.Plan{benchPlan}
	return cat
}

// CatalogYAML is Catalog as a `credits serve --config` file.
func CatalogYAML() string {
	var b strings.Builder
	cat := Catalog()
	b.WriteString("# credits bench: the built-in operations, one plan nothing runs out of.\noperations:\n")
	for _, op := range cat.Operations {
		fmt.Fprintf(&b, "  - {id: %s, name: %s, cost: %d}\n", op.ID, strconv.Quote(op.Name), op.Cost)
	}
	b.WriteString("plans:\n")
	for _, p := range cat.Plans {
		fmt.Fprintf(&b, "  - {id: %s, name: %s, monthly_credits: %d, price_cents: %d, currency: %s}\n", p.ID, strconv.Quote(p.Name), p.MonthlyCredits, p.PriceCents, p.Currency)
	}
	return b.String()
}

// ServerParams tell StartServerFunc what to serve.
type ServerParams struct {
	DB       string // SQLite file path (new)
	Config   string // catalog YAML file (CatalogYAML)
	AdminKey string
	// Engine, if set, is called with the server's engine and store before
	// it listens, when the server runs in this process: its HTTP rows then
	// report the writer as the engine rows do.
	Engine func(*ledger.Engine, ledger.Store)
}

// StartServerFunc starts a `credits serve` listening on a free local port and
// returns its base URL and a function that stops it (and waits until its
// store is closed).
type StartServerFunc func(ctx context.Context, p ServerParams) (baseURL string, stop func() error, err error)

// Config is one bench run. Zero values take the defaults.
type Config struct {
	Duration time.Duration // per scenario (5 s)
	// Warmup is load run before Duration and not counted (1 s; negative:
	// none). A row starts with empty caches and, on SQLite, no backlog
	// behind the journal: without it the first moments run faster or
	// slower than the steady state the row is meant to show.
	Warmup time.Duration
	// Rounds runs the whole list of rows this many times, one row after
	// the other in each round, and reports each row over all its rounds
	// (1). This machine's speed drifts by half within minutes: in turns,
	// a row and its reference see the same drift, and the spread of the
	// rounds' ratios shows how far one round can be trusted.
	Rounds     int
	Workers    int      // concurrent callers (64)
	Workspaces int      // of the many shape (10,000)
	Streams    int      // balance streams of the http/hot+streams row (2,000)
	Shapes     []string // ShapeMany, ShapeHot (both)
	// Scenarios selects rows by name or name prefix ("engine/sqlite",
	// "http", "naive/postgres/hot"); empty: every available row.
	Scenarios []string
	// PostgresURL (a postgres:// URL) enables the PostgreSQL rows; each
	// scenario makes a schema of its own there and drops it.
	PostgresURL string
	// ServerURL runs the HTTP rows against a running server instead of
	// starting one; AdminKey is its admin key.
	ServerURL string
	AdminKey  string
	// StartServer starts `credits serve` for the HTTP rows when ServerURL
	// is empty; nil leaves the http/many and http/hot rows out.
	StartServer StartServerFunc
	MaxBatch    int // the engine's MaxBatch (0: the engine's default)
	// Writers is the engine's Writers on PostgreSQL (credits bench passes
	// credits serve's; 0: one).
	Writers int
	TempDir string // for SQLite files (os.MkdirTemp)
	// Cap bounds the whole run (default: per row, twice Duration plus two
	// minutes for setup and teardown).
	Cap time.Duration
	// Verify checks each store's invariants after its scenario (tests).
	Verify bool
	// Progress gets one line per scenario; Terminal redraws it in place.
	Progress io.Writer
	Terminal bool
	Logger   *slog.Logger
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 1
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = time.Second
	case c.Warmup < 0:
		c.Warmup = 0
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Workspaces <= 0 {
		c.Workspaces = 10_000
	}
	if c.Streams <= 0 {
		c.Streams = DefaultStreams
	}
	if len(c.Shapes) == 0 {
		c.Shapes = []string{ShapeMany, ShapeHot}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// scenario is one row: a way to set up a target.
type scenario struct {
	name      string // kind/backend/shape, or http/shape, http/noop
	kind      string // engine, naive, http, noop
	backend   string // sqlite, postgres, http
	shape     string
	reference string // the row this one is divided by; "" for a reference
	requests  int    // HTTP requests per pair (0: not HTTP)
	streams   int    // balance streams open on the hot workspace
}

// allScenarios lists every row in table order.
func allScenarios(shapes []string) []scenario {
	var out []scenario
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, kind := range []string{"engine", "naive"} {
			for _, shape := range shapes {
				s := scenario{name: kind + "/" + backend + "/" + shape, kind: kind, backend: backend, shape: shape}
				if kind == "engine" {
					s.reference = "naive/" + backend + "/" + shape
				}
				out = append(out, s)
			}
		}
	}
	for _, shape := range shapes {
		out = append(out, scenario{name: "http/" + shape, kind: "http", backend: "http", shape: shape, reference: "http/noop", requests: 2})
	}
	for _, shape := range shapes {
		if shape == ShapeHot {
			out = append(out, scenario{name: "http/hot+streams", kind: "http", backend: "http", shape: ShapeHot, reference: "http/hot", requests: 2, streams: DefaultStreams})
		}
	}
	out = append(out, scenario{name: "http/noop", kind: "noop", backend: "http", shape: ShapeMany, requests: 2})
	return out
}

// ScenarioNames lists every row name the shapes make, in table order.
func ScenarioNames(shapes []string) []string {
	var names []string
	for _, s := range allScenarios(shapes) {
		names = append(names, s.name)
	}
	return names
}

// matches reports whether a --scenarios entry selects a row: the whole name
// or a prefix ending at a "/".
func matches(entry, name string) bool {
	entry = strings.Trim(entry, "/")
	return entry == name || strings.HasPrefix(name, entry+"/")
}

// UsageError is a mistake in the Config (a bad shape or scenario).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// selectScenarios applies the shapes and scenario filter and drops rows
// that cannot run (PostgreSQL without a URL, HTTP without a server) unless
// they were asked for by name, which is an error.
func (c *Config) selectScenarios() ([]scenario, error) {
	for _, sh := range c.Shapes {
		if sh != ShapeMany && sh != ShapeHot {
			return nil, &UsageError{fmt.Sprintf("unknown shape %q (shapes: %s, %s)", sh, ShapeMany, ShapeHot)}
		}
	}
	all := allScenarios(c.Shapes)
	for i := range all {
		if all[i].streams > 0 {
			all[i].streams = c.Streams
		}
	}
	unavailable := func(s scenario) string {
		switch {
		case s.backend == "postgres" && c.PostgresURL == "":
			return "needs --pg"
		case s.kind == "http" && c.ServerURL == "" && c.StartServer == nil:
			return "needs --url or a server to start"
		}
		return ""
	}
	var out []scenario
	if len(c.Scenarios) == 0 {
		for _, s := range all {
			if unavailable(s) == "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	picked := map[string]bool{}
	for _, entry := range c.Scenarios {
		// A prefix takes the rows of it that can run; it is a mistake
		// only when none can.
		found, why := false, ""
		for _, s := range all {
			if !matches(entry, s.name) {
				continue
			}
			if w := unavailable(s); w != "" {
				why = fmt.Sprintf("scenario %s %s", s.name, w)
				continue
			}
			found = true
			picked[s.name] = true
		}
		switch {
		case !found && why != "":
			return nil, &UsageError{why}
		case !found:
			return nil, &UsageError{fmt.Sprintf("no scenario matches %q (scenarios: %s)", entry, strings.Join(ScenarioNames(c.Shapes), ", "))}
		}
	}
	for _, s := range all {
		if picked[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// target is what a worker drives: one pair per call.
type target interface {
	// Pair holds benchOperation on the workspace with the key, then
	// captures it.
	Pair(ctx context.Context, workspaceID, idempotencyKey string) error
	// Verify checks the store's invariants after the load (Config.Verify).
	Verify(ctx context.Context) error
	// Close releases everything the target made (files, schemas, servers).
	Close() error
}

// finisher is a target with checks to make right after the load.
type finisher interface {
	Finish(ctx context.Context, res *Result) error
}

// measurer is a target with counters of its own to start at the end of
// the warm-up, so that Finish reports the measured load alone.
type measurer interface {
	StartMeasuring()
}

// Result is one row of the table.
type Result struct {
	Scenario       string  `json:"scenario"`
	Pairs          int64   `json:"pairs"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"first_error,omitempty"`
	Seconds        float64 `json:"seconds"`
	PairsPerSec    float64 `json:"pairs_per_s"`
	RequestsPerSec float64 `json:"requests_per_s,omitempty"`
	P50us          float64 `json:"p50_us"`
	P99us          float64 `json:"p99_us"`
	P999us         float64 `json:"p999_us"`
	MaxUs          float64 `json:"max_us"`
	MeanUs         float64 `json:"mean_us"`
	// CPUusPerPair is the CPU this process used during the row (clients,
	// server and engine alike: they share it) per pair; see processCPU.
	CPUusPerPair float64 `json:"cpu_us_per_pair,omitempty"`
	// CommandsPerBatch is the in-process engine's mean batch during the
	// row: commands committed per transaction (or journal write).
	CommandsPerBatch float64 `json:"commands_per_batch,omitempty"`
	// JournalSync* are the SQLite journal's write+fdatasync times during
	// the row, one per batch: the wait no caller of a durable store avoids.
	JournalSyncs     int64   `json:"journal_syncs,omitempty"`
	JournalSyncP50us float64 `json:"journal_sync_p50_us,omitempty"`
	JournalSyncP99us float64 `json:"journal_sync_p99_us,omitempty"`
	JournalSyncMaxUs float64 `json:"journal_sync_max_us,omitempty"`
	// JournalSyncShare is the journal's write+fdatasync time over the
	// row's time: the part of WriterBusy spent waiting on the disk.
	JournalSyncShare float64 `json:"journal_sync_share,omitempty"`
	// WriterBusy is the share of the row's time the in-process engine's
	// writers spent on batches (each writer's time summed, over Writers
	// times the row's). Near 1 the writers are the limit; well under it,
	// they wait for commands: the limit is elsewhere (the CPU the callers
	// and the tables take, or the callers' own round trips).
	WriterBusy float64 `json:"writer_busy,omitempty"`
	Writers    int     `json:"writers,omitempty"`
	// Reference is the row this one is compared with ("" for a
	// reference); Ratio is PairsPerSec over the reference's (0: it did not
	// run).
	Reference string  `json:"reference,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"`
	// RatioMin and RatioMax are the lowest and highest of the rounds'
	// own ratios, when there were several (Config.Rounds).
	RatioMin float64 `json:"ratio_min,omitempty"`
	RatioMax float64 `json:"ratio_max,omitempty"`
	// Verified is set when Config.Verify checked the store afterwards.
	Verified bool `json:"verified,omitempty"`
	// Streams were open on the workspace during the row; StreamsFinal of
	// them received the final balance (over rounds: the most opened in a
	// round, and the fewest that got it).
	Streams      int `json:"streams,omitempty"`
	StreamsFinal int `json:"streams_final,omitempty"`
	// StreamEventsPerSec is the balance events the streams received
	// together, a second of the row.
	StreamEventsPerSec float64 `json:"stream_events_per_sec,omitempty"`
	// Steal is the share of the machine's CPU time the hypervisor gave
	// to other guests during the row (Linux; 0 elsewhere or when none).
	Steal float64 `json:"cpu_steal,omitempty"`
	// MachineCPUusPerPair is the CPU the whole machine spent a pair
	// (Linux; 0 elsewhere): the process's, and a PostgreSQL server's on
	// the same machine, and the kernel's on its own threads. A change to
	// the PostgreSQL path shows in the server's CPU a pair where the drift
	// of pairs a second hides it (docs/performance.md, 2026-12-03).
	MachineCPUusPerPair float64 `json:"machine_cpu_us_per_pair,omitempty"`

	hist *Histogram
	// The sums the figures above are made of, to add rounds up.
	cpu               time.Duration
	commands, batches int64
	busy              time.Duration // summed over the writers
	syncs             *Histogram
	requests          int // HTTP requests a pair
	streamEvents      int64
	ticks             cpuTicks
}

// Histogram is the row's pair latencies.
func (r *Result) Histogram() *Histogram { return r.hist }

// Report is a whole run.
type Report struct {
	Machine     Machine `json:"machine"`
	PeakRSS     int64   `json:"peak_rss_bytes"` // VmHWM; 0 when unknown
	DurationSec float64 `json:"duration_s"`     // per scenario
	WarmupSec   float64 `json:"warmup_s"`       // before each, not counted
	Rounds      int     `json:"rounds"`         // each row's runs, in turn with the others
	Workers     int     `json:"workers"`
	Workspaces  int     `json:"workspaces"`
	MaxBatch    int     `json:"max_batch,omitempty"`
	Writers     int     `json:"postgres_writers,omitempty"`
	// Disk is the probe of the disk the SQLite files are on, run before
	// the rows (disk.go).
	Disk    *DiskProbe `json:"disk,omitempty"`
	Results []Result   `json:"results"`
	// Targets are the performance targets judged on the rows (targets.go).
	Targets []Verdict `json:"targets,omitempty"`
}

// Result returns the row with the name, or nil.
func (r *Report) Result(name string) *Result {
	for i := range r.Results {
		if r.Results[i].Scenario == name {
			return &r.Results[i]
		}
	}
	return nil
}

// Run runs the selected scenarios one after the other and returns their
// figures. On an error or a cancelled ctx it returns the rows finished so
// far with the error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	scenarios, err := cfg.selectScenarios()
	if err != nil {
		return nil, err
	}
	if len(scenarios) == 0 {
		return nil, &UsageError{"no scenario to run"}
	}
	capDur := cfg.Cap
	if capDur <= 0 {
		capDur = time.Duration(len(scenarios)*cfg.Rounds) * (2*(cfg.Warmup+cfg.Duration) + 2*time.Minute)
	}
	ctx, cancel := context.WithTimeout(ctx, capDur)
	defer cancel()
	tmp := cfg.TempDir
	if tmp == "" {
		if tmp, err = os.MkdirTemp("", "credits-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
	}
	rep := &Report{Machine: ReadMachine(), DurationSec: cfg.Duration.Seconds(), WarmupSec: cfg.Warmup.Seconds(), Rounds: cfg.Rounds,
		Workers: cfg.Workers, Workspaces: cfg.Workspaces, MaxBatch: cfg.MaxBatch, Writers: cfg.Writers}
	// Each phase as long as a row, up to a second: a short test run stays
	// short.
	if rep.Disk, err = probeDisk(ctx, tmp, min(time.Second, cfg.Duration)); err != nil {
		return rep, fmt.Errorf("disk probe: %w", err)
	}
	run := newRunID()
	var rounds [][]Result
	for round := range cfg.Rounds {
		rounds = append(rounds, nil)
		// Each round's files apart, and gone once its rows are done.
		dir, err := os.MkdirTemp(tmp, fmt.Sprintf("round-%d-", round+1))
		if err != nil {
			rep.finish(rounds)
			return rep, err
		}
		for _, s := range scenarios {
			name := s.name
			if cfg.Rounds > 1 {
				name = fmt.Sprintf("%s (round %d of %d)", s.name, round+1, cfg.Rounds)
			}
			res, err := runScenario(ctx, &cfg, s, name, dir, fmt.Sprintf("%s%d", run, round))
			if err != nil {
				os.RemoveAll(dir)
				rep.finish(rounds)
				if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("%s: the run took longer than its cap of %s: %w", name, capDur, err)
				}
				return rep, fmt.Errorf("%s: %w", name, err)
			}
			rounds[round] = append(rounds[round], res)
		}
		if err := os.RemoveAll(dir); err != nil {
			rep.finish(rounds)
			return rep, err
		}
	}
	rep.finish(rounds)
	return rep, nil
}

// finish adds each row's rounds up, computes the ratios and reads the peak
// memory.
func (r *Report) finish(rounds [][]Result) {
	r.Results = nil
	index := map[string]int{}
	for _, round := range rounds {
		for _, res := range round {
			i, ok := index[res.Scenario]
			if !ok {
				index[res.Scenario] = len(r.Results)
				r.Results = append(r.Results, res)
				continue
			}
			r.Results[i] = addRound(r.Results[i], res)
		}
	}
	for i := range r.Results {
		res := &r.Results[i]
		if res.Reference == "" {
			continue
		}
		if ref := r.Result(res.Reference); ref != nil && ref.PairsPerSec > 0 {
			res.Ratio = res.PairsPerSec / ref.PairsPerSec
		}
		if len(rounds) < 2 {
			continue
		}
		// Each round's own ratio: the row against its reference of the
		// same round, the nearest in time.
		for _, round := range rounds {
			var row, ref *Result
			for j := range round {
				switch round[j].Scenario {
				case res.Scenario:
					row = &round[j]
				case res.Reference:
					ref = &round[j]
				}
			}
			if row == nil || ref == nil || ref.PairsPerSec <= 0 {
				continue
			}
			ratio := row.PairsPerSec / ref.PairsPerSec
			if res.RatioMin == 0 || ratio < res.RatioMin {
				res.RatioMin = ratio
			}
			res.RatioMax = max(res.RatioMax, ratio)
		}
	}
	r.PeakRSS = PeakRSS()
	r.Machine.LoadAvg1m = loadAvg1m()
	r.Targets = r.judge()
}

// addRound adds a row's next round to the sum of its earlier ones.
func addRound(a, b Result) Result {
	sum := a
	sum.Pairs += b.Pairs
	sum.Errors += b.Errors
	if sum.FirstError == "" {
		sum.FirstError = b.FirstError
	}
	sum.Seconds += b.Seconds
	sum.cpu += b.cpu
	sum.commands += b.commands
	sum.batches += b.batches
	sum.busy += b.busy
	sum.streamEvents += b.streamEvents
	sum.ticks.total += b.ticks.total
	sum.ticks.steal += b.ticks.steal
	sum.ticks.busy += b.ticks.busy
	sum.Writers = max(a.Writers, b.Writers)
	sum.Verified = a.Verified && b.Verified
	// Streams are opened afresh each round: the most opened, and the
	// fewest that got the final balance.
	sum.Streams = max(a.Streams, b.Streams)
	sum.StreamsFinal = min(a.StreamsFinal, b.StreamsFinal)
	sum.hist = new(Histogram)
	for _, h := range []*Histogram{a.hist, b.hist} {
		if h != nil {
			sum.hist.Merge(h)
		}
	}
	if a.syncs != nil || b.syncs != nil {
		sum.syncs = new(Histogram)
		for _, h := range []*Histogram{a.syncs, b.syncs} {
			if h != nil {
				sum.syncs.Merge(h)
			}
		}
	}
	sum.setFigures()
	return sum
}

// setFigures computes the row's figures from its sums.
func (r *Result) setFigures() {
	r.PairsPerSec, r.RequestsPerSec, r.CPUusPerPair, r.CommandsPerBatch = 0, 0, 0, 0
	r.WriterBusy, r.JournalSyncShare, r.StreamEventsPerSec, r.Steal, r.MachineCPUusPerPair = 0, 0, 0, 0, 0
	if r.Seconds > 0 {
		r.PairsPerSec = float64(r.Pairs) / r.Seconds
		r.RequestsPerSec = r.PairsPerSec * float64(r.requests)
		r.StreamEventsPerSec = float64(r.streamEvents) / r.Seconds
	}
	if r.ticks.total > 0 {
		r.Steal = float64(r.ticks.steal) / float64(r.ticks.total)
	}
	if r.Pairs > 0 && r.cpu > 0 {
		r.CPUusPerPair = float64(r.cpu) / float64(time.Microsecond) / float64(r.Pairs)
	}
	if r.Pairs > 0 && r.ticks.busy > 0 {
		r.MachineCPUusPerPair = float64(r.ticks.busy) * float64(tickDuration/time.Microsecond) / float64(r.Pairs)
	}
	if r.batches > 0 {
		r.CommandsPerBatch = float64(r.commands) / float64(r.batches)
	}
	if r.Writers > 0 && r.Seconds > 0 {
		r.WriterBusy = r.busy.Seconds() / (float64(r.Writers) * r.Seconds)
	}
	if h := r.hist; h != nil {
		r.P50us, r.P99us, r.P999us = us(h.Percentile(0.50)), us(h.Percentile(0.99)), us(h.Percentile(0.999))
		r.MaxUs, r.MeanUs = us(h.Max()), us(h.Mean())
	}
	if h := r.syncs; h != nil && h.Count() > 0 {
		r.JournalSyncs = int64(h.Count())
		r.JournalSyncP50us, r.JournalSyncP99us = us(h.Percentile(0.50)), us(h.Percentile(0.99))
		r.JournalSyncMaxUs = us(h.Max())
		if r.Seconds > 0 {
			r.JournalSyncShare = h.Sum().Seconds() / r.Seconds
		}
	}
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "b" + hex.EncodeToString(b[:])
}

// workspaceIDs names a shape's workspaces, unique to the run (a running
// server may have workspaces of earlier runs).
func workspaceIDs(run string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-ws-%06d", run, i)
	}
	return ids
}

// parallel calls fn(i) for i in [0, n) on up to workers goroutines and
// returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = parent.Err()
	}
	return first
}

func runScenario(ctx context.Context, cfg *Config, s scenario, name, tmp, run string) (Result, error) {
	p := newProgress(cfg.Progress, cfg.Terminal, name, cfg.Duration)
	n := 1
	if s.shape == ShapeMany {
		n = cfg.Workspaces
	}
	ids := workspaceIDs(run+"-"+strings.NewReplacer("/", "-", "+", "-").Replace(s.name), n)
	if s.kind == "noop" {
		p.setup("starting the no-op handler")
	} else {
		p.setup(fmt.Sprintf("creating %d workspace(s)", n))
	}
	t, err := newTarget(ctx, cfg, s, tmp, ids)
	if err != nil {
		p.fail(err)
		return Result{}, err
	}
	res, runErr := drive(ctx, cfg, s, t, ids, run, p)
	if f, ok := t.(finisher); ok && runErr == nil {
		runErr = f.Finish(ctx, &res)
	}
	if runErr == nil && cfg.Verify {
		if err := t.Verify(ctx); err != nil {
			runErr = fmt.Errorf("verify: %w", err)
		} else {
			res.Verified = true
		}
	}
	if err := t.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close: %w", err)
	}
	if runErr != nil {
		p.fail(runErr)
		return res, runErr
	}
	p.done(res)
	return res, nil
}

func newTarget(ctx context.Context, cfg *Config, s scenario, tmp string, ids []string) (target, error) {
	switch s.kind {
	case "engine":
		return newEngineTarget(ctx, cfg, s, tmp, ids)
	case "naive":
		return newNaiveTarget(ctx, cfg, s, tmp, ids)
	case "http":
		return newHTTPTarget(ctx, cfg, s, tmp, ids)
	case "noop":
		return newNoopTarget(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown scenario kind %q", s.kind)
}

// drive runs the workers for cfg.Warmup and then cfg.Duration, counting
// the pairs of the second part. A worker starts a pair only before the
// deadline; the pairs in flight then finish and are counted.
func drive(ctx context.Context, cfg *Config, s scenario, t target, ids []string, run string, p *progress) (Result, error) {
	res := Result{Scenario: s.name, Reference: s.reference}
	hists := make([]*Histogram, cfg.Workers)
	var pairs, errs atomic.Int64
	var firstErr atomic.Pointer[string]
	// The workers run from the start of the warm-up; a pair counts if it
	// starts after the warm-up, and the clock and the CPU are read from
	// then: the row measures the load in its steady state.
	end := time.Now().Add(cfg.Warmup + cfg.Duration)
	var start time.Time
	var cpu0 time.Duration
	var ticks0 cpuTicks
	measuring := make(chan struct{})
	go func() {
		if cfg.Warmup > 0 {
			p.setup(fmt.Sprintf("warming up for %s", cfg.Warmup))
			timer := time.NewTimer(cfg.Warmup)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if m, ok := t.(measurer); ok {
			m.StartMeasuring()
		}
		start, cpu0, ticks0 = time.Now(), processCPU(), machineTicks()
		close(measuring)
	}()
	started := func() bool {
		select {
		case <-measuring:
			return true
		default:
			return false
		}
	}
	// A row runs its duration, and past it until one pair has counted: a
	// disk that stalls longer than a short row (seen here: syncs of 0.6 s)
	// would leave it with no figures at all. Its seconds are the time it
	// really ran; an error ends it (the row fails), and so does Cap.
	more := func() bool { return time.Now().Before(end) || pairs.Load() == 0 && errs.Load() == 0 }
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		h := new(Histogram)
		hists[w] = h
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(end.UnixNano())))
			prefix := run + "-" + strconv.Itoa(w) + "-"
			for seq := 0; ctx.Err() == nil && more(); seq++ {
				counted := started()
				ws := ids[0]
				if len(ids) > 1 {
					ws = ids[rng.IntN(len(ids))]
				}
				key := prefix + strconv.Itoa(seq)
				t0 := time.Now()
				if err := t.Pair(ctx, ws, key); err != nil {
					if ctx.Err() != nil {
						return
					}
					// An error counts even in the warm-up: the row fails.
					if errs.Add(1) == 1 {
						msg := err.Error()
						firstErr.Store(&msg)
					}
					continue
				}
				if counted {
					h.Record(time.Since(t0))
					pairs.Add(1)
				}
			}
		})
	}
	<-measuring // after the warm-up, or ctx done
	stopProgress := p.run(start, &pairs)
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	ticks := machineTicks().since(ticks0)
	stopProgress()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	all := new(Histogram)
	for _, h := range hists {
		all.Merge(h)
	}
	res.hist = all
	res.Pairs = pairs.Load()
	res.Errors = errs.Load()
	if m := firstErr.Load(); m != nil {
		res.FirstError = *m
	}
	res.Seconds = elapsed.Seconds()
	res.cpu = cpu
	res.ticks = ticks
	res.requests = s.requests
	res.setFigures()
	return res, nil
}

// us is d in microseconds, as the results hold times.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
