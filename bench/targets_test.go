package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// fullRun is a report of every row, each figure either side of its target.
func fullRun(pass bool) *Report {
	pick := func(ok, bad float64) float64 {
		if pass {
			return ok
		}
		return bad
	}
	return &Report{Workers: 64, Workspaces: 10_000, Rounds: 3, Machine: Machine{CPUs: 2}, Results: []Result{
		{Scenario: "engine/sqlite/many", PairsPerSec: pick(50_000, 25_000), P99us: pick(4_999, 14_200), Reference: "naive/sqlite/many", Ratio: pick(20, 19.9), RatioMin: pick(20, 17)},
		{Scenario: "engine/sqlite/hot", PairsPerSec: pick(40_000, 19_999), P99us: pick(3_000, 5_000), Reference: "naive/sqlite/hot", Ratio: pick(31, 10), RatioMin: pick(25, 8)},
		{Scenario: "engine/postgres/many", PairsPerSec: 4_000, Reference: "naive/postgres/many", Ratio: pick(2, 1.5), RatioMin: pick(2, 1.2)},
		{Scenario: "engine/postgres/hot", PairsPerSec: 4_000, Reference: "naive/postgres/hot", Ratio: pick(5, 4.9), RatioMin: pick(5, 4)},
		{Scenario: "http/many", PairsPerSec: 5_000, Reference: "http/noop", Ratio: pick(0.5, 0.46), RatioMin: pick(0.5, 0.40)},
		{Scenario: "http/hot", PairsPerSec: 5_000, Reference: "http/noop", Ratio: pick(0.58, 0.49), RatioMin: pick(0.52, 0.47)},
		{Scenario: "http/hot+streams", PairsPerSec: 5_000, Reference: "http/hot", Ratio: pick(0.9, 0.8), RatioMin: pick(0.9, 0.7), Streams: 2000, StreamsFinal: int(pick(2000, 1999))},
	}}
}

func TestTargetsJudgeEachRow(t *testing.T) {
	t.Parallel()
	wantTargets := []string{
		"engine/sqlite/many ≥ 50,000 pairs/s",
		"engine/sqlite/hot ≥ 80% of engine/sqlite/many",
		"engine/sqlite/many p99 < 5.00ms at 64 callers",
		"engine/sqlite/hot p99 < 5.00ms at 64 callers",
		"engine/sqlite/many ≥ 20.0× naive/sqlite/many",
		"engine/sqlite/hot ≥ 20.0× naive/sqlite/hot",
		"engine/postgres/hot ≥ 5.00× naive/postgres/hot",
		"engine/postgres/many ≥ 2.00× naive/postgres/many",
		"http/many ≥ 0.50× http/noop",
		"http/hot ≥ 0.50× http/noop",
		"http/hot+streams ≥ 0.90× http/hot",
		"http/hot+streams: every stream receives the final balance",
	}
	tests := []struct {
		name  string
		pass  bool
		notes []string // each verdict's note, in order
	}{
		{"every figure on its target", true, make([]string, len(wantTargets))},
		{"every figure just missing", false, []string{
			"2.00× short",
			"0.0% short", // 19,999 of 25,000 is 79.996%, and still short
			"2.84× over",
			"0.0% over", // 5 ms exactly is not under 5 ms
			"0.5% short",
			"2.00× short",
			"2.0% short",
			"1.33× short",
			"8.7% short",
			"2.0% short",
			"1.12× short",
			"",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vs := fullRun(tc.pass).judge()
			var targets []string
			for _, v := range vs {
				targets = append(targets, v.Target)
			}
			if !slices.Equal(targets, wantTargets) {
				t.Fatalf("targets:\n%s\nwant:\n%s", strings.Join(targets, "\n"), strings.Join(wantTargets, "\n"))
			}
			for i, v := range vs {
				if v.Met != tc.pass || v.Note != tc.notes[i] {
					t.Errorf("%s: met %v note %q, want met %v note %q", v.Target, v.Met, v.Note, tc.pass, tc.notes[i])
				}
			}
		})
	}
}

func TestTargetsSayWhenARoundMissed(t *testing.T) {
	t.Parallel()
	rep := &Report{Workers: 64, Workspaces: 10_000, Rounds: 3, Results: []Result{
		{Scenario: "http/many", PairsPerSec: 5_000, Reference: "http/noop", Ratio: 0.55, RatioMin: 0.46, RatioMax: 0.6},
	}}
	vs := rep.judge()
	if len(vs) != 1 || !vs[0].Met || vs[0].Note != "not in every round: the lowest 0.46×" || vs[0].Measured != "0.55×" {
		t.Fatalf("verdicts %+v", vs)
	}
}

func TestTargetsNeedTheirLoadAndRows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Report)
		want int
	}{
		{"the targets' load", func(*Report) {}, 12},
		{"other workers", func(r *Report) { r.Workers = 8 }, 0},
		{"other workspaces", func(r *Report) { r.Workspaces = 100 }, 0},
		{"batches forced", func(r *Report) { r.MaxBatch = 1 }, 0},
		// A row whose reference did not run has no ratio to judge.
		{"no references", func(r *Report) {
			for i := range r.Results {
				r.Results[i].Ratio, r.Results[i].RatioMin = 0, 0
			}
		}, 5},
		{"the SQLite rows alone", func(r *Report) { r.Results = r.Results[:2] }, 6},
		{"no rows", func(r *Report) { r.Results = nil }, 0},
	} {
		rep := fullRun(true)
		tc.edit(rep)
		if got := len(rep.judge()); got != tc.want {
			t.Errorf("%s: %d verdicts, want %d", tc.name, got, tc.want)
		}
	}
}

func TestTargetsInTheTableAndJSON(t *testing.T) {
	t.Parallel()
	rep := fullRun(false)
	rep.Machine.CPUs = 8
	rep.Targets = rep.judge()
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"targets (set for 2 CPUs; this machine has 8, so they say little here):\n",
		"  NOT MET  engine/sqlite/many ≥ 50,000 pairs/s: 25,000 pairs/s (2.00× short)\n",
		"  NOT MET  http/hot+streams: every stream receives the final balance: 1999 of 2000 in every round\n",
		"  NOT MET  engine/sqlite/hot ≥ 80% of engine/sqlite/many: 79.99% (0.0% short)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table without %q:\n%s", want, out.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Targets, rep.Targets) {
		t.Errorf("JSON targets %+v, want %+v", back.Targets, rep.Targets)
	}

	pass := fullRun(true)
	pass.Targets = pass.judge()
	out.Reset()
	if err := pass.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "targets (set for 2 CPUs):\n  met      engine/sqlite/many ≥ 50,000 pairs/s: 50,000 pairs/s\n") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestMemoryTarget(t *testing.T) {
	t.Parallel()
	points := func(n int) []MemoryPoint { return []MemoryPoint{{Workspaces: 1000}, {Workspaces: n}, {Workspaces: n}} }
	for _, tc := range []struct {
		name       string
		workspaces int
		peak       int64
		want       []Verdict
	}{
		{"under", 1_000_000, 183_300_000, []Verdict{{Target: "resident < 200 MB with 1,000,000 workspaces", Measured: "peak 183.3 MB (174.8 MiB)", Met: true}}},
		{"at the limit", 1_000_000, 200_000_000, []Verdict{{Target: "resident < 200 MB with 1,000,000 workspaces", Measured: "peak 200.0 MB (190.7 MiB)", Note: "0.0% over"}}},
		{"over", 1_000_000, 300_000_000, []Verdict{{Target: "resident < 200 MB with 1,000,000 workspaces", Measured: "peak 300.0 MB (286.1 MiB)", Note: "1.50× over"}}},
		{"fewer workspaces", 100_000, 100_000_000, nil},
		{"no peak known", 1_000_000, 0, nil},
	} {
		r := &MemoryReport{Points: points(tc.workspaces), PeakRSS: tc.peak}
		if got := r.judge(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	r := &MemoryReport{Points: points(1_000_000), PeakRSS: 183_300_000, cpus: 2}
	r.Targets = r.judge()
	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "targets (set for 2 CPUs):\n  met      resident < 200 MB with 1,000,000 workspaces: peak 183.3 MB (174.8 MiB)\n") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestFmtNearShowsWhichSideOfTheTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v, target float64
		want      string
	}{
		{0.8996, 0.9, "0.899"}, // "0.90" would read as met
		{0.89999, 0.9, "0.899"},
		{0.9, 0.9, "0.90"},
		{0.9004, 0.9, "0.90"}, // over it: rounded as usual
		{0.55, 0.5, "0.55"},
		{19.96, 20, "19.96"}, // "20.0" would read as met
		{0.899996, 0.9, "0.899"},
		{0.8999999, 0.9, "0.899"},
		{17.3, 20, "17.3"},
	} {
		if got := fmtNear(tc.v, tc.target); got != tc.want {
			t.Errorf("fmtNear(%v, %v) = %q, want %q", tc.v, tc.target, got, tc.want)
		}
	}
}
