package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/config"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/internal/pgtest"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
)

// startTestServer is the HTTP API over a SQLite store, built like `credits
// serve` builds it (cmd/credits tests run the real command).
func startTestServer(ctx context.Context, p ServerParams) (string, func() error, error) {
	cat, err := config.Load(p.Config)
	if err != nil {
		return "", nil, err
	}
	st, err := sqlite.Open(ctx, p.DB)
	if err != nil {
		return "", nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := ledger.New(st, cat, ledger.Options{Logger: log})
	if err != nil {
		st.Close()
		return "", nil, err
	}
	if p.Engine != nil {
		p.Engine(eng, st)
	}
	authn, _, err := auth.New(ctx, st, auth.Options{AdminKey: p.AdminKey})
	if err != nil {
		eng.Close()
		st.Close()
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		eng.Close()
		st.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: httpapi.New(httpapi.Config{Engine: eng, Auth: authn, Logger: log})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		<-served
		return errors.Join(err, eng.Close(), st.Close())
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// tinyConfig is a run short enough for a test.
// diskPhaseOK checks one phase of the disk probe: syncs made, latencies in
// order.
func diskPhaseOK(p DiskSync) bool {
	return p.Syncs > 0 && p.P50us > 0 && p.P50us <= p.P99us && p.P99us <= p.P999us && p.P999us <= p.MaxUs
}

func tinyConfig(t *testing.T) Config {
	return Config{
		Duration:    500 * time.Millisecond,
		Warmup:      100 * time.Millisecond,
		Workers:     4,
		Workspaces:  10,
		Streams:     20,
		StartServer: startTestServer,
		TempDir:     t.TempDir(),
		Verify:      true,
		Cap:         2 * time.Minute,
	}
}

// checkReport checks that every wanted row ran, made pairs without errors,
// was verified, and that the table and JSON show it.
func checkReport(t *testing.T, rep *Report, want []string) {
	t.Helper()
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.Scenario)
		if r.Pairs <= 0 || r.PairsPerSec <= 0 {
			t.Errorf("%s: %d pairs, %.0f pairs/s", r.Scenario, r.Pairs, r.PairsPerSec)
		}
		if r.Errors != 0 {
			t.Errorf("%s: %d errors, first: %s", r.Scenario, r.Errors, r.FirstError)
		}
		if !r.Verified {
			t.Errorf("%s: not verified", r.Scenario)
		}
		if r.Histogram().Count() != uint64(r.Pairs) {
			t.Errorf("%s: %d latencies for %d pairs", r.Scenario, r.Histogram().Count(), r.Pairs)
		}
		if !(r.P50us > 0 && r.P50us <= r.P99us && r.P99us <= r.P999us && r.P999us <= r.MaxUs) {
			t.Errorf("%s: latencies out of order: p50 %v p99 %v p99.9 %v max %v", r.Scenario, r.P50us, r.P99us, r.P999us, r.MaxUs)
		}
		if r.Reference != "" && r.Ratio <= 0 {
			t.Errorf("%s: no ratio to %s", r.Scenario, r.Reference)
		}
		if !(r.Steal >= 0 && r.Steal < 1) {
			t.Errorf("%s: steal %v", r.Scenario, r.Steal)
		}
		// 500 ms of a loaded machine is tens of /proc/stat ticks.
		if runtime.GOOS == "linux" && r.MachineCPUusPerPair <= 0 {
			t.Errorf("%s: the machine's CPU a pair %v", r.Scenario, r.MachineCPUusPerPair)
		}
		if strings.HasPrefix(r.Scenario, "http/") != (r.RequestsPerSec > 0) {
			t.Errorf("%s: requests/s %v", r.Scenario, r.RequestsPerSec)
		}
		// The engine rows and the HTTP rows of a server the bench runs in
		// its own process (all of them here) report the engine's writer;
		// the references have none.
		engine := strings.HasPrefix(r.Scenario, "engine/") || strings.HasPrefix(r.Scenario, "http/") && r.Scenario != "http/noop"
		if engine != (r.CommandsPerBatch >= 1) {
			t.Errorf("%s: %v commands per batch", r.Scenario, r.CommandsPerBatch)
		}
		// A batch under way when measuring starts or ends counts only its
		// part inside the row (ledger.Stats): the share passes 1 by no
		// more than the microseconds between the row's clock and the
		// writer's readings.
		if engine != (r.Writers >= 1) || engine && !(r.WriterBusy > 0 && r.WriterBusy <= 1.01) || !engine && r.WriterBusy != 0 {
			t.Errorf("%s: %d writers busy %v of the time", r.Scenario, r.Writers, r.WriterBusy)
		}
		// The journal's syncs happen inside the writer's batches.
		if r.JournalSyncs > 0 && !(r.JournalSyncShare > 0 && r.JournalSyncShare <= r.WriterBusy) {
			t.Errorf("%s: journal syncs %v of the time, the writer busy %v", r.Scenario, r.JournalSyncShare, r.WriterBusy)
		}
		// The test's server is on SQLite, as credits bench's is.
		if onSQLite := engine && !strings.HasPrefix(r.Scenario, "engine/postgres/"); onSQLite != (r.JournalSyncs > 0) ||
			onSQLite && !(r.JournalSyncP50us > 0 && r.JournalSyncP50us <= r.JournalSyncP99us && r.JournalSyncP99us <= r.JournalSyncMaxUs) {
			t.Errorf("%s: %d journal syncs, p50 %v p99 %v max %v", r.Scenario, r.JournalSyncs, r.JournalSyncP50us, r.JournalSyncP99us, r.JournalSyncMaxUs)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows %q, want %q", got, want)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(table.String(), "\n")
	if len(lines) < len(want)+3 || !strings.Contains(lines[0], "pairs/s") || !strings.Contains(lines[0], "p99.9") {
		t.Fatalf("table:\n%s", table.String())
	}
	for _, line := range lines {
		if strings.HasSuffix(line, " ") {
			t.Errorf("table line %q ends in spaces", line)
		}
	}
	for i, name := range want {
		line := lines[i+1]
		if !strings.HasPrefix(strings.TrimSpace(line), name+" ") {
			t.Errorf("table line %d is %q, want row %s", i+1, line, name)
		}
		ref := strings.HasPrefix(name, "naive/") || name == "http/noop"
		if ref != strings.HasSuffix(strings.TrimSpace(line), "reference") {
			t.Errorf("table line %q: reference column wrong", line)
		}
	}
	if d := rep.Disk; d == nil || !diskPhaseOK(d.Alone) || !diskPhaseOK(d.Busy) || d.BusyThreads != runtime.NumCPU() {
		t.Errorf("disk probe %+v", d)
	} else if !strings.Contains(table.String(), "disk of the SQLite files, before the rows: "+d.String()+"\n") {
		t.Errorf("table without the disk probe:\n%s", table.String())
	}
	if !strings.Contains(table.String(), "peak resident memory") || !strings.Contains(table.String(), "CPUs") {
		t.Errorf("table without memory and machine:\n%s", table.String())
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, js.String())
	}
	if back.Disk == nil || *back.Disk != *rep.Disk {
		t.Errorf("JSON disk probe %+v, want %+v", back.Disk, rep.Disk)
	}
	if len(back.Results) != len(want) || back.Machine.CPUs <= 0 || back.Workers != rep.Workers {
		t.Errorf("JSON round trip: %+v", back)
	}
	for i := range back.Results {
		if back.Results[i].Scenario != want[i] || back.Results[i].PairsPerSec != rep.Results[i].PairsPerSec {
			t.Errorf("JSON row %d: %+v", i, back.Results[i])
		}
	}
}

func TestRunSQLiteAndHTTPScenarios(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig(t)
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"engine/sqlite/many", "engine/sqlite/hot", "naive/sqlite/many", "naive/sqlite/hot", "http/many", "http/hot", "http/hot+streams", "http/noop"}
	checkReport(t, rep, want)
	if r := rep.Result("http/hot+streams"); r.Streams != cfg.Streams || r.StreamsFinal != cfg.Streams || r.Reference != "http/hot" || r.StreamEventsPerSec <= 0 {
		t.Errorf("streams row %+v", r)
	}
	for _, name := range want {
		if !strings.Contains(progress.String(), "scenario "+name+": ") {
			t.Errorf("no progress line for %s:\n%s", name, progress.String())
		}
	}
	if strings.Contains(progress.String(), "\r") {
		t.Error("progress off a terminal has carriage returns")
	}
}

func TestRunPostgresScenarios(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig(t)
	cfg.PostgresURL = pgtest.URL(t)
	cfg.Scenarios = []string{"engine/postgres", "naive/postgres"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, []string{"engine/postgres/many", "engine/postgres/hot", "naive/postgres/many", "naive/postgres/hot"})
}

func TestProgressOnATerminalRedrawsOneLine(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig(t)
	cfg.Scenarios = []string{"http/noop"}
	cfg.Terminal = true
	var out bytes.Buffer
	cfg.Progress = &out
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "\r") || strings.Count(s, "\n") != 1 || !strings.Contains(s, "[") {
		t.Errorf("terminal progress %q: want one line redrawn with \\r and a bar", s)
	}
}

func TestScenarioSelection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    []string
		wantErr string
	}{
		{"default without pg or server", Config{}, []string{"engine/sqlite/many", "engine/sqlite/hot", "naive/sqlite/many", "naive/sqlite/hot", "http/noop"}, ""},
		{"with everything", Config{PostgresURL: "postgres://x", ServerURL: "http://x"}, ScenarioNames([]string{"many", "hot"}), ""},
		{"prefixes", Config{Scenarios: []string{"engine", "http/noop"}}, []string{"engine/sqlite/many", "engine/sqlite/hot", "http/noop"}, ""},
		{"one shape", Config{Shapes: []string{"hot"}, Scenarios: []string{"engine/sqlite"}}, []string{"engine/sqlite/hot"}, ""},
		{"exact row", Config{Scenarios: []string{"naive/sqlite/many"}}, []string{"naive/sqlite/many"}, ""},
		{"no partial words", Config{Scenarios: []string{"eng"}}, nil, `no scenario matches "eng"`},
		{"postgres without --pg", Config{Scenarios: []string{"engine/postgres"}}, nil, "needs --pg"},
		{"http without a server", Config{Scenarios: []string{"http/many"}}, nil, "needs --url"},
		{"bad shape", Config{Shapes: []string{"warm"}}, nil, `unknown shape "warm"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.defaults()
			got, err := cfg.selectScenarios()
			if tc.wantErr != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want a usage error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("got %q, want %q", names, tc.want)
			}
		})
	}
}

func TestNaiveVerifyCatchesABalanceThatDoesNotAddUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := tinyConfig(t)
	cfg.defaults()
	ids := workspaceIDs("t", 3)
	nt, err := newNaiveTarget(ctx, &cfg, scenario{name: "naive/sqlite/many", kind: "naive", backend: "sqlite"}, cfg.TempDir, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer nt.Close()
	for i, id := range ids {
		if err := nt.Pair(ctx, id, "k"+id); err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
	}
	if _, err := nt.hold(ctx, ids[0], "left-held"); err != nil {
		t.Fatal(err)
	}
	if err := nt.Verify(ctx); err != nil {
		t.Fatalf("consistent tables: %v", err)
	}
	if _, err := nt.db.ExecContext(ctx, `UPDATE naive_balances SET used = used + 1, available = available - 1 WHERE id = ?`, ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := nt.Verify(ctx); err == nil || !strings.Contains(err.Error(), ids[1]) {
		t.Fatalf("Verify after a lost credit: %v", err)
	}
	if err := nt.capture(ctx, "ch_none"); !errors.Is(err, errNaiveNotHeld) {
		t.Errorf("capture of an unknown charge: %v", err)
	}
}

func TestNaiveHoldRefusesWhatTheBalanceCannotPay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := tinyConfig(t)
	cfg.defaults()
	nt, err := newNaiveTarget(ctx, &cfg, scenario{name: "naive/sqlite/hot", kind: "naive", backend: "sqlite"}, cfg.TempDir, []string{"poor"})
	if err != nil {
		t.Fatal(err)
	}
	defer nt.Close()
	if _, err := nt.db.ExecContext(ctx, `UPDATE naive_balances SET granted = 1, available = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := nt.hold(ctx, "poor", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := nt.hold(ctx, "poor", "b"); !errors.Is(err, errNaiveInsufficient) {
		t.Fatalf("second hold on 1 credit: %v", err)
	}
	if err := nt.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogYAMLLoads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := writeFile(path, CatalogYAML()); err != nil {
		t.Fatal(err)
	}
	cat, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, CatalogYAML())
	}
	want := Catalog()
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cat.Plans) != 1 || cat.Plans[0] != want.Plans[0] || len(cat.Operations) != len(want.Operations) {
		t.Errorf("loaded %+v, want %+v", cat, want)
	}
	if op, ok := cat.Operation(benchOperation); !ok || op.Cost != 1 {
		t.Errorf("%s: %+v", benchOperation, op)
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1234: "1,234", 41234.6: "41,235", 1234567: "1,234,567"} {
		if got := fmtCount(in); got != want {
			t.Errorf("fmtCount(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "-", 12.345: "12.3µs", 850: "850µs", 1234: "1.23ms", 45678: "45.7ms", 2_500_000: "2.50s"} {
		if got := fmtMicros(in); got != want {
			t.Errorf("fmtMicros(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0.456: "0.46", 45.12: "45.1", 123.4: "123"} {
		if got := fmtRatio(in); got != want {
			t.Errorf("fmtRatio(%v) = %q, want %q", in, got, want)
		}
	}
	if got := parseVmHWM("Name:\tcredits\nVmPeak:\t  999 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n"); got != 12345*1024 {
		t.Errorf("parseVmHWM = %d", got)
	}
	if got := parseVmHWM("Name: x\n"); got != 0 {
		t.Errorf("parseVmHWM without the line = %d", got)
	}
}

func TestReportWithoutAReferenceSaysSo(t *testing.T) {
	t.Parallel()
	rep := &Report{}
	rep.finish([][]Result{{{Scenario: "engine/sqlite/many", Reference: "naive/sqlite/many", Pairs: 10, PairsPerSec: 100}}})
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "(naive/sqlite/many not run)") {
		t.Errorf("table:\n%s", out.String())
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func TestMemory(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := Memory(context.Background(), 2500, 100*time.Millisecond, 4, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Points) != 3 || rep.Points[0].Workspaces != 1000 || rep.Points[1].Workspaces != 2500 || rep.Points[2].Workspaces != 2500 {
		t.Fatalf("points %+v", rep.Points)
	}
	for _, p := range rep.Points {
		if p.RSS <= 0 || p.Heap <= 0 {
			t.Fatalf("point %+v", p)
		}
	}
	if rep.PairsPerSec <= 0 || rep.PeakRSS <= 0 {
		t.Fatalf("report %+v", rep)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "2500 (after load)") {
		t.Fatalf("table %q %v", table.String(), err)
	}
}

// stampTarget is a target for drive alone: each pair takes a millisecond
// and notes when it started and whether StartMeasuring had been called.
type stampTarget struct {
	mu       sync.Mutex
	measured time.Time // when StartMeasuring was called
	calls    int       // StartMeasuring calls
	before   int       // pairs started before it
	after    int       // pairs started after it
}

func (s *stampTarget) Pair(ctx context.Context, _, _ string) error {
	s.mu.Lock()
	if s.calls == 0 {
		s.before++
	} else {
		s.after++
	}
	s.mu.Unlock()
	time.Sleep(time.Millisecond)
	return nil
}

func (s *stampTarget) StartMeasuring() {
	s.mu.Lock()
	s.calls++
	s.measured = time.Now()
	s.mu.Unlock()
}

func (s *stampTarget) Verify(context.Context) error { return nil }
func (s *stampTarget) Close() error                 { return nil }

// The warm-up's pairs run but are not counted, and the row's clock starts
// when it ends.
func TestDriveCountsOnlyAfterTheWarmup(t *testing.T) {
	t.Parallel()
	cfg := Config{Duration: 300 * time.Millisecond, Warmup: 300 * time.Millisecond, Workers: 2}
	cfg.defaults()
	st := &stampTarget{}
	began := time.Now()
	res, err := drive(context.Background(), &cfg, scenario{name: "stamp"}, st, []string{"ws"}, "run", newProgress(io.Discard, false, "stamp", cfg.Duration))
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.calls != 1 {
		t.Fatalf("StartMeasuring called %d times, want once", st.calls)
	}
	if w := st.measured.Sub(began); w < cfg.Warmup {
		t.Errorf("measuring started %v after the load, before the %v warm-up ended", w, cfg.Warmup)
	}
	if st.before == 0 || st.after == 0 {
		t.Fatalf("%d pairs in the warm-up, %d after: want some of each", st.before, st.after)
	}
	// A worker may start one pair between StartMeasuring and the clock.
	if res.Pairs > int64(st.after) || res.Pairs < int64(st.after-cfg.Workers) {
		t.Errorf("%d pairs counted, want the %d started after the warm-up", res.Pairs, st.after)
	}
	if total := time.Since(began).Seconds(); res.Seconds > total-cfg.Warmup.Seconds() {
		t.Errorf("the row's clock ran %.3fs of the %.3fs: the warm-up is in it", res.Seconds, total)
	}
}

// A journal sync under way when measuring began counts only its part
// since: the syncs' share of a row cannot pass the writer's busy share.
func TestSyncTimesClipToTheRow(t *testing.T) {
	t.Parallel()
	s := &syncTimes{from: time.Now()}
	time.Sleep(20 * time.Millisecond)
	s.record(time.Hour)        // began long before the row
	s.record(time.Millisecond) // inside it
	if n := s.h.Count(); n != 2 {
		t.Fatalf("%d syncs recorded, want 2", n)
	}
	if sum := s.h.Sum(); sum < 20*time.Millisecond || sum > time.Second {
		t.Errorf("the syncs sum to %v: the one that straddled the start was not clipped to the row's 20 ms", sum)
	}
}

// stallTarget's pairs that start before until wait for it (a disk that
// stalls); later pairs are quick.
type stallTarget struct{ until time.Time }

func (s *stallTarget) Pair(ctx context.Context, _, _ string) error {
	if time.Now().Before(s.until) {
		time.Sleep(time.Until(s.until))
	}
	return nil
}
func (s *stallTarget) Verify(context.Context) error { return nil }
func (s *stallTarget) Close() error                 { return nil }

// A row whose every pair is stalled past its end runs on until one pair
// counts, and its clock says how long it really ran: no row ends with no
// figures.
func TestDriveRunsUntilAPairCounts(t *testing.T) {
	t.Parallel()
	cfg := Config{Duration: 100 * time.Millisecond, Warmup: 50 * time.Millisecond, Workers: 2}
	cfg.defaults()
	began := time.Now()
	st := &stallTarget{until: began.Add(400 * time.Millisecond)}
	res, err := drive(context.Background(), &cfg, scenario{name: "stall"}, st, []string{"ws"}, "run", newProgress(io.Discard, false, "stall", cfg.Duration))
	if err != nil {
		t.Fatal(err)
	}
	if res.Pairs < 1 || res.Histogram().Count() != uint64(res.Pairs) {
		t.Fatalf("%d pairs (%d latencies) after a stall past the row's end", res.Pairs, res.Histogram().Count())
	}
	if res.Seconds < 0.3 {
		t.Errorf("the row's clock says %.3fs; it ran past the 400 ms stall", res.Seconds)
	}
}

// Rounds add up per row: pairs, time, CPU and latencies over all of them,
// the ratio of the sums, and the spread of each round's own ratio.
func TestRoundsAddUp(t *testing.T) {
	t.Parallel()
	row := func(name, ref string, pairs int64, seconds float64, cpu time.Duration, lat time.Duration) Result {
		h := new(Histogram)
		for range pairs {
			h.Record(lat)
		}
		r := Result{Scenario: name, Reference: ref, Pairs: pairs, Seconds: seconds, Verified: true, hist: h, cpu: cpu, requests: 2,
			commands: 2 * pairs, batches: pairs / 10, busy: time.Duration(pairs) * time.Millisecond, Writers: 2,
			streamEvents: 3 * pairs, ticks: cpuTicks{total: 200, steal: uint64(pairs / 100), busy: uint64(pairs / 10)}}
		r.setFigures()
		return r
	}
	rep := &Report{Rounds: 2}
	rep.finish([][]Result{
		{row("http/many", "http/noop", 400, 1, 400*time.Millisecond, time.Millisecond), row("http/noop", "", 1000, 1, 200*time.Millisecond, time.Millisecond)},
		{row("http/many", "http/noop", 600, 1, 300*time.Millisecond, 3*time.Millisecond), row("http/noop", "", 1000, 1, 300*time.Millisecond, time.Millisecond)},
	})
	if len(rep.Results) != 2 {
		t.Fatalf("%d rows, want 2", len(rep.Results))
	}
	many := rep.Result("http/many")
	checks := []struct {
		what      string
		got, want float64
	}{
		{"pairs", float64(many.Pairs), 1000},
		{"seconds", many.Seconds, 2},
		{"pairs/s", many.PairsPerSec, 500},
		{"requests/s", many.RequestsPerSec, 1000},
		{"CPU µs a pair", many.CPUusPerPair, 700},
		{"commands a batch", many.CommandsPerBatch, 20},
		{"writers' busy share", many.WriterBusy, 0.25}, // 1 s of 2 writers' 4 s
		{"ratio", many.Ratio, 0.5},
		{"lowest round's ratio", many.RatioMin, 0.4},
		{"highest round's ratio", many.RatioMax, 0.6},
		{"latencies", float64(many.Histogram().Count()), 1000},
		{"stream events a second", many.StreamEventsPerSec, 1500},       // 3,000 in 2 s
		{"steal", many.Steal, 0.025},                                    // 10 ticks of 400
		{"the machine's CPU µs a pair", many.MachineCPUusPerPair, 1000}, // 100 ticks of 10 ms for 1,000 pairs
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9*c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	// 400 pairs at 1 ms and 600 at 3 ms: the median is in the second round.
	if many.P50us < 2900 || many.P50us > 3100 {
		t.Errorf("p50 %vµs, want about 3000", many.P50us)
	}
	if !many.Verified {
		t.Error("verified in both rounds, but not in the sum")
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0.50× http/noop (rounds 0.40–0.60)") || !strings.Contains(out.String(), "in each of 2 rounds") ||
		!strings.Contains(out.String(), "700µs of CPU per pair (this process: callers, server and engine), 1.00ms the whole machine's; 20.0 commands per batch; 2 writers busy 25% of the time; 2.5% of the machine's CPU stolen by its hypervisor") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestBalanceUsed(t *testing.T) {
	real, err := json.Marshal(credits.Balance{WorkspaceID: "ws", Granted: 5000, Available: 3766, Held: 0, Used: 1234})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data string
		want int64
		ok   bool
	}{
		{string(real), 1234, true},
		{`{"used":0}`, 0, true},
		{`{"available":7,"used":999999999999999999}`, 999999999999999999, true},
		{`{"used":9999999999999999999}`, 0, false},
		{`{"used":"x"}`, 0, false},
		{`{"available":7}`, 0, false},
		{``, 0, false},
	} {
		got, ok := balanceUsed([]byte(tc.data))
		if got != tc.want || ok != tc.ok {
			t.Errorf("balanceUsed(%s) = %d, %v; want %d, %v", tc.data, got, ok, tc.want, tc.ok)
		}
	}
}
