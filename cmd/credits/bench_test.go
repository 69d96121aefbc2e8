package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/credits-dev/credits/bench"
	"github.com/credits-dev/credits/internal/pgtest"
)

// runBench runs `credits bench` tiny, with --verify and --json, and returns
// its output and the JSON report. With an environment it runs the command
// directly (parallel tests cannot set the process's).
func runBench(t *testing.T, e env, extra ...string) (string, bench.Report) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	args := append([]string{"bench", "--duration", "200ms", "--warmup", "100ms", "--workers", "4", "--workspaces", "10", "--verify", "--json", jsonPath}, extra...)
	var out, errOut syncBuffer
	code := 0
	if e == nil {
		code = Run(context.Background(), args, &out, &errOut)
	} else if err := (&BenchCommand{Stdout: &out, Stderr: &errOut, Getenv: e.get}).Run(context.Background(), args[1:]); err != nil {
		t.Fatalf("credits %q: %v\nstdout:\n%s", args, err, out.String())
	}
	if code != 0 {
		t.Fatalf("credits %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errOut.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, data)
	}
	return out.String(), rep
}

// checkRows checks the table and the JSON have each row, in order, with
// pairs and a verified store.
func checkRows(t *testing.T, out string, rep bench.Report, want []string) {
	t.Helper()
	if len(rep.Results) != len(want) {
		t.Fatalf("JSON has %d rows, want %q\n%s", len(rep.Results), want, out)
	}
	_, table, ok := strings.Cut(out, "\n\n")
	if !ok || !strings.Contains(table, "scenario") || !strings.Contains(table, "peak resident memory") {
		t.Fatalf("no table after the progress lines:\n%s", out)
	}
	lines := strings.Split(table, "\n")
	for i, name := range want {
		r := rep.Results[i]
		if r.Scenario != name || r.Pairs <= 0 || r.Errors != 0 || !r.Verified {
			t.Errorf("row %d: %+v, want %s with pairs, no errors, verified", i, r, name)
		}
		if f := strings.Fields(lines[i+1]); len(f) == 0 || f[0] != name {
			t.Errorf("table line %d %q, want row %s", i+1, lines[i+1], name)
		}
	}
	if rep.PeakRSS <= 0 || rep.Machine.CPUs <= 0 {
		t.Errorf("memory %d, machine %+v", rep.PeakRSS, rep.Machine)
	}
}

func TestBenchRunsEveryLocalScenarioAgainstCreditsServe(t *testing.T) {
	t.Parallel()
	out, rep := runBench(t, nil, "--streams", "10")
	checkRows(t, out, rep, []string{"engine/sqlite/many", "engine/sqlite/hot", "naive/sqlite/many", "naive/sqlite/hot", "http/many", "http/hot", "http/hot+streams", "http/noop"})
	if !regexp.MustCompile(`http/hot\+streams: 10 balance streams open on the workspace, \d+ events a second to them together; 10 received the final balance`).MatchString(out) {
		t.Errorf("no streams line:\n%s", out)
	}
	if !strings.Contains(out, "scenario http/many: ") || strings.Contains(out, "\r") {
		t.Errorf("want plain progress lines off a terminal:\n%s", out)
	}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Scenario, "http/") && r.RequestsPerSec != 2*r.PairsPerSec {
			t.Errorf("%s: %v requests/s for %v pairs/s", r.Scenario, r.RequestsPerSec, r.PairsPerSec)
		}
		// The credits serve the bench started runs in its process: its
		// rows report its writer (ServeCommand.EngineFunc).
		if strings.HasPrefix(r.Scenario, "http/") && r.Scenario != "http/noop" &&
			(r.Writers != 1 || r.CommandsPerBatch < 1 || r.WriterBusy <= 0 || r.JournalSyncs == 0) {
			t.Errorf("%s: writer figures missing: %d writers, %v commands a batch, busy %v, %d syncs",
				r.Scenario, r.Writers, r.CommandsPerBatch, r.WriterBusy, r.JournalSyncs)
		}
	}
}

func TestBenchPostgresScenarios(t *testing.T) {
	t.Parallel()
	pg := pgtest.URL(t)
	out, rep := runBench(t, nil, "--pg", pg, "--scenarios", "engine/postgres,naive/postgres")
	checkRows(t, out, rep, []string{"engine/postgres/many", "engine/postgres/hot", "naive/postgres/many", "naive/postgres/hot"})
}

func TestBenchAgainstARunningServer(t *testing.T) {
	t.Parallel()
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "c.db"), "--config", writeBenchCatalog(t)},
		env{"CREDITS_ADMIN_KEY": testAdminKey, "CREDITS_RATE_LIMIT": "0"})
	out, rep := runBench(t, env{"CREDITS_ADMIN_KEY": testAdminKey}, "--url", s.url, "--scenarios", "http", "--streams", "5")
	checkRows(t, out, rep, []string{"http/many", "http/hot", "http/hot+streams", "http/noop"})
	// A server in another process: the bench cannot read its writer.
	for _, r := range rep.Results {
		if r.Writers != 0 || r.CommandsPerBatch != 0 || r.JournalSyncs != 0 {
			t.Errorf("%s: writer figures of a server it cannot see: %d writers, %v commands a batch, %d syncs",
				r.Scenario, r.Writers, r.CommandsPerBatch, r.JournalSyncs)
		}
	}
}

func writeBenchCatalog(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(p, []byte(bench.CatalogYAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBenchFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--shapes", "warm"}, `unknown shape "warm"`},
		{[]string{"bench", "--scenarios", "engine/postgres"}, "needs --pg"},
		{[]string{"bench", "--scenarios", "nope"}, `no scenario matches "nope"`},
		{[]string{"bench", "--workers", "0"}, "must be positive"},
		{[]string{"bench", "--warmup", "-1s"}, "--warmup not negative"},
		{[]string{"bench", "--rounds", "0"}, "--rounds must be positive"},
		{[]string{"bench", "extra"}, "takes no arguments"},
		{[]string{"bench", "--duration", "soon"}, "invalid value"},
	} {
		var out, errOut syncBuffer
		if code := Run(context.Background(), tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("credits %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
	var out, errOut syncBuffer
	err := (&BenchCommand{Stdout: &out, Stderr: &errOut, Getenv: env{}.get}).Run(context.Background(), []string{"--url", "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "CREDITS_ADMIN_KEY") {
		t.Errorf("--url without an admin key: %v", err)
	}
}

// --cpuprofile and --memprofile each write a gzipped pprof profile; a path
// that cannot be created fails before anything runs.
func TestBenchProfiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cpu, mem, tr := filepath.Join(dir, "cpu.out"), filepath.Join(dir, "mem.out"), filepath.Join(dir, "trace.out")
	runBench(t, nil, "--scenarios", "engine/sqlite/hot", "--cpuprofile", cpu, "--memprofile", mem, "--trace", tr)
	if data, err := os.ReadFile(tr); err != nil || !bytes.HasPrefix(data, []byte("go 1.")) || len(data) < 1024 {
		t.Errorf("--trace wrote %d bytes starting %q (%v); want a Go execution trace", len(data), data[:min(len(data), 16)], err)
	}
	for _, p := range []string{cpu, mem} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s is not a pprof profile (gzip): %v", p, err)
		}
		data, err := io.ReadAll(zr)
		f.Close()
		if err != nil || len(data) == 0 {
			t.Errorf("%s: %d bytes, %v", p, len(data), err)
		}
	}
	var out, errOut syncBuffer
	missing := filepath.Join(dir, "no-such-dir", "mem.out")
	err := (&BenchCommand{Stdout: &out, Stderr: &errOut, Getenv: env{}.get}).Run(context.Background(), []string{"--memprofile", missing})
	if err == nil || !strings.Contains(err.Error(), "no-such-dir") || strings.Contains(out.String(), "scenario") {
		t.Errorf("--memprofile to a missing directory: err %v, stdout %q; want the path's error before any scenario", err, out.String())
	}
}

// Rounds run every row in turn and report each over all of them, with the
// spread of its rounds' ratios.
func TestBenchRounds(t *testing.T) {
	t.Parallel()
	out, rep := runBench(t, nil, "--scenarios", "engine/sqlite/hot,naive/sqlite/hot", "--rounds", "2")
	checkRows(t, out, rep, []string{"engine/sqlite/hot", "naive/sqlite/hot"})
	if rep.Rounds != 2 || strings.Count(out, "(round 2 of 2)") == 0 {
		t.Fatalf("rounds %d; output:\n%s", rep.Rounds, out)
	}
	r := rep.Results[0]
	// The rounds' times differ a little, so the ratio of the sums may
	// fall a little outside the rounds' own.
	if !(r.RatioMin > 0 && r.RatioMin <= r.RatioMax && r.Ratio >= 0.9*r.RatioMin && r.Ratio <= 1.1*r.RatioMax) {
		t.Errorf("ratio %v, rounds' ratios %v to %v: want the sum's about between them", r.Ratio, r.RatioMin, r.RatioMax)
	}
	if !strings.Contains(out, "× naive/sqlite/hot (rounds ") {
		t.Errorf("the table shows no spread:\n%s", out)
	}
}
