package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// The performance targets (README, Performance), judged on a run's own
// rows, so that every claim in the README's targets table is one command
// away from being checked again. They are set for the bench's default load
// (64 callers, 10,000 workspaces for many) on a 2-core machine; on another
// load they are not judged, and on another machine they are judged but
// say so.

// Targeted load: the targets mean nothing at another.
const (
	targetWorkers    = 64
	targetWorkspaces = 10_000
	targetCPUs       = 2
	// maxResidentBytes is the memory target: under 200 MB (decimal, the
	// stricter reading) while 1,000,000 workspaces exist.
	maxResidentBytes      = 200_000_000
	targetMemoryWorkspace = 1_000_000
)

// Verdict is one target judged on a run.
type Verdict struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	// Note says by how much a target is missed, or which round missed a
	// ratio that the rounds together met.
	Note string `json:"note,omitempty"`
}

func (v Verdict) String() string {
	s := "met      "
	if !v.Met {
		s = "NOT MET  "
	}
	s += v.Target + ": " + v.Measured
	if v.Note != "" {
		s += " (" + v.Note + ")"
	}
	return s
}

// judge judges the targets whose rows ran; nil when the run's load, or
// its engine's batches (--batch), are not the ones they are set for.
func (r *Report) judge() []Verdict {
	if r.Workers != targetWorkers || r.Workspaces != targetWorkspaces || r.MaxBatch != 0 {
		return nil
	}
	var vs []Verdict
	add := func(v Verdict, ok bool) {
		if ok {
			vs = append(vs, v)
		}
	}
	add(r.minRate("engine/sqlite/many", 50_000))
	add(r.share("engine/sqlite/hot", "engine/sqlite/many", 0.8))
	add(r.maxP99("engine/sqlite/many", 5*time.Millisecond))
	add(r.maxP99("engine/sqlite/hot", 5*time.Millisecond))
	add(r.minRatio("engine/sqlite/many", 20))
	add(r.minRatio("engine/sqlite/hot", 20))
	add(r.minRatio("engine/postgres/hot", 5))
	add(r.minRatio("engine/postgres/many", 2))
	add(r.minRatio("http/many", 0.5))
	add(r.minRatio("http/hot", 0.5))
	add(r.minRatio("http/hot+streams", 0.9))
	add(r.everyStream("http/hot+streams"))
	return vs
}

func (r *Report) minRate(name string, want float64) (Verdict, bool) {
	res := r.Result(name)
	if res == nil {
		return Verdict{}, false
	}
	v := Verdict{Target: fmt.Sprintf("%s ≥ %s pairs/s", name, fmtCount(want)), Measured: fmtCount(res.PairsPerSec) + " pairs/s", Met: res.PairsPerSec >= want}
	if !v.Met {
		v.Note = short(want, res.PairsPerSec)
	}
	return v, true
}

// share judges a row's pairs a second as a share of another row's.
func (r *Report) share(name, of string, want float64) (Verdict, bool) {
	res, base := r.Result(name), r.Result(of)
	if res == nil || base == nil || base.PairsPerSec <= 0 {
		return Verdict{}, false
	}
	got := res.PairsPerSec / base.PairsPerSec
	v := Verdict{Target: fmt.Sprintf("%s ≥ %.0f%% of %s", name, 100*want, of), Measured: fmtNear(100*got, 100*want) + "%", Met: got >= want}
	if !v.Met {
		v.Note = short(want, got)
	}
	return v, true
}

func (r *Report) maxP99(name string, want time.Duration) (Verdict, bool) {
	res := r.Result(name)
	if res == nil {
		return Verdict{}, false
	}
	limit := us(want)
	v := Verdict{Target: fmt.Sprintf("%s p99 < %s at %d callers", name, fmtMicros(limit), targetWorkers), Measured: fmtMicros(res.P99us), Met: res.P99us < limit}
	if !v.Met {
		v.Note = fmtMiss(res.P99us/limit) + " over"
	}
	return v, true
}

// minRatio judges a row's ratio to its reference (over all rounds), and
// says when a round's own ratio missed it.
func (r *Report) minRatio(name string, want float64) (Verdict, bool) {
	res := r.Result(name)
	if res == nil || res.Reference == "" || res.Ratio <= 0 {
		return Verdict{}, false
	}
	v := Verdict{Target: fmt.Sprintf("%s ≥ %s× %s", name, fmtRatio(want), res.Reference), Measured: fmtNear(res.Ratio, want) + "×", Met: res.Ratio >= want}
	switch {
	case !v.Met:
		v.Note = short(want, res.Ratio)
	case res.RatioMin > 0 && res.RatioMin < want:
		v.Note = fmt.Sprintf("not in every round: the lowest %s×", fmtNear(res.RatioMin, want))
	}
	return v, true
}

func (r *Report) everyStream(name string) (Verdict, bool) {
	res := r.Result(name)
	if res == nil || res.Streams == 0 {
		return Verdict{}, false
	}
	v := Verdict{Target: name + ": every stream receives the final balance", Measured: fmt.Sprintf("%d of %d", res.StreamsFinal, res.Streams), Met: res.StreamsFinal == res.Streams}
	if r.Rounds > 1 {
		v.Measured += " in every round"
	}
	return v, true
}

// short says how far a figure is under what a target wants.
func short(want, got float64) string {
	if got <= 0 {
		return "none measured"
	}
	return fmtMiss(want/got) + " short"
}

// fmtMiss prints by how much a figure misses its target (a factor over
// 1): in percent under 10% ("0.2%", where "1.00×" would hide it), as a
// factor above.
func fmtMiss(f float64) string {
	if f < 1.1 {
		return fmt.Sprintf("%.1f%%", 100*(f-1))
	}
	return fmt.Sprintf("%.2f×", f)
}

// fmtNear prints a ratio as fmtRatio does, unless that would round a
// figure under its target up to the target: then it prints one decimal
// more, truncated, which is under it (0.8996 against 0.9 is "0.899", not
// "0.90").
func fmtNear(v, target float64) string {
	s := fmtRatio(v)
	if p, _ := strconv.ParseFloat(s, 64); v >= target || p < target {
		return s
	}
	d := ratioDecimals(v) + 1
	scale := math.Pow(10, float64(d))
	return strconv.FormatFloat(math.Floor(v*scale)/scale, 'f', d, 64)
}

// judge judges the memory target when the run reached its workspaces.
func (r *MemoryReport) judge() []Verdict {
	if len(r.Points) == 0 || r.Points[len(r.Points)-1].Workspaces < targetMemoryWorkspace || r.PeakRSS <= 0 {
		return nil
	}
	v := Verdict{Target: fmt.Sprintf("resident < %d MB with %s workspaces", maxResidentBytes/1_000_000, fmtCount(targetMemoryWorkspace)),
		Measured: fmt.Sprintf("peak %.1f MB (%s)", float64(r.PeakRSS)/1e6, mib(r.PeakRSS)), Met: r.PeakRSS < maxResidentBytes}
	if !v.Met {
		v.Note = fmtMiss(float64(r.PeakRSS)/maxResidentBytes) + " over"
	}
	return []Verdict{v}
}

// writeTargets prints the verdicts under a heading that says what they
// are set for and whether this machine is that.
func writeTargets(w io.Writer, vs []Verdict, cpus int) error {
	if len(vs) == 0 {
		return nil
	}
	head := fmt.Sprintf("targets (set for %d CPUs", targetCPUs)
	if cpus != targetCPUs {
		head += fmt.Sprintf("; this machine has %d, so they say little here", cpus)
	}
	if _, err := fmt.Fprintln(w, head+"):"); err != nil {
		return err
	}
	for _, v := range vs {
		if _, err := fmt.Fprintln(w, "  "+v.String()); err != nil {
			return err
		}
	}
	return nil
}
