package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Machine is what the figures were measured on.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Go       string `json:"go"`
	// LoadAvg1m is the 1-minute load average when the run ended (Linux):
	// other work on the machine skews the figures.
	LoadAvg1m float64 `json:"load_avg_1m,omitempty"`
}

// ReadMachine describes this machine (the CPU model from /proc/cpuinfo on
// Linux).
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadAvg1m reads the 1-minute load average, or 0.
func loadAvg1m() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// PeakRSS is the process's peak resident memory in bytes (VmHWM in
// /proc/self/status), or 0 where that is not available.
func PeakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return parseVmHWM(string(data))
}

func parseVmHWM(status string) int64 { return statusKB(status, "VmHWM:") }

// WriteTable prints the report as a table, then the memory and machine.
func (r *Report) WriteTable(w io.Writer) error {
	// Numbers align right, names left: tabwriter aligns every column one
	// way, so the name columns are padded to their width first.
	rows := [][]string{{"scenario", "pairs/s", "req/s", "p50", "p99", "p99.9", "vs reference"}}
	for _, res := range r.Results {
		reqs := ""
		if res.RequestsPerSec > 0 {
			reqs = fmtCount(res.RequestsPerSec)
		}
		vs := "reference"
		switch {
		case res.Reference != "" && res.Ratio > 0 && res.RatioMin > 0:
			vs = fmt.Sprintf("%s× %s (rounds %s–%s)", fmtRatio(res.Ratio), res.Reference, fmtRatio(res.RatioMin), fmtRatio(res.RatioMax))
		case res.Reference != "" && res.Ratio > 0:
			vs = fmt.Sprintf("%s× %s", fmtRatio(res.Ratio), res.Reference)
		case res.Reference != "":
			vs = "(" + res.Reference + " not run)"
		}
		rows = append(rows, []string{res.Scenario, fmtCount(res.PairsPerSec), reqs,
			fmtMicros(res.P50us), fmtMicros(res.P99us), fmtMicros(res.P999us), vs})
	}
	left := map[int]int{0: 0, 6: 0}
	for _, row := range rows {
		for c := range left {
			left[c] = max(left[c], utf8.RuneCountInString(row[c]))
		}
	}
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range rows {
		for c, width := range left {
			row[c] = fmt.Sprintf("%-*s", width, row[c])
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The right alignment pads the first column by 2 and leaves the last
	// one's padding at the ends of the lines: trim both.
	for line := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if _, err := fmt.Fprintln(w, strings.TrimRight(strings.TrimPrefix(line, "  "), " ")); err != nil {
			return err
		}
	}
	for _, res := range r.Results {
		if res.Errors > 0 {
			fmt.Fprintf(w, "%s: %d pairs failed; first: %s\n", res.Scenario, res.Errors, res.FirstError)
		}
		if res.CPUusPerPair > 0 {
			fmt.Fprintf(w, "%s: %s of CPU per pair (this process: callers, server and engine)", res.Scenario, fmtMicros(res.CPUusPerPair))
			if res.MachineCPUusPerPair > 0 {
				fmt.Fprintf(w, ", %s the whole machine's", fmtMicros(res.MachineCPUusPerPair))
			}
			if res.CommandsPerBatch > 0 {
				fmt.Fprintf(w, "; %.1f commands per batch", res.CommandsPerBatch)
			}
			if res.Writers == 1 {
				fmt.Fprintf(w, "; the writer busy %.0f%% of the time", 100*res.WriterBusy)
			} else if res.Writers > 1 {
				fmt.Fprintf(w, "; %d writers busy %.0f%% of the time", res.Writers, 100*res.WriterBusy)
			}
			if res.Steal > 0 {
				fmt.Fprintf(w, "; %.1f%% of the machine's CPU stolen by its hypervisor", 100*res.Steal)
			}
			fmt.Fprintln(w)
		}
		if res.JournalSyncs > 0 {
			fmt.Fprintf(w, "%s: journal write+fdatasync p50 %s, p99 %s, max %s (%d batches; %.0f%% of the time)\n", res.Scenario,
				fmtMicros(res.JournalSyncP50us), fmtMicros(res.JournalSyncP99us), fmtMicros(res.JournalSyncMaxUs), res.JournalSyncs, 100*res.JournalSyncShare)
		}
		if res.Streams > 0 {
			every := ""
			if r.Rounds > 1 {
				every = " in every round"
			}
			fmt.Fprintf(w, "%s: %d balance streams open on the workspace, %.0f events a second to them together; %d received the final balance%s\n",
				res.Scenario, res.Streams, res.StreamEventsPerSec, res.StreamsFinal, every)
		}
	}
	if err := writeTargets(w, r.Targets, r.Machine.CPUs); err != nil {
		return err
	}
	if r.Disk != nil {
		fmt.Fprintf(w, "disk of the SQLite files, before the rows: %s\n", r.Disk)
	}
	rss := "unknown"
	if r.PeakRSS > 0 {
		rss = fmt.Sprintf("%.1f MiB", float64(r.PeakRSS)/(1<<20))
	}
	m := r.Machine
	model := m.CPUModel
	if model == "" {
		model = "unknown CPU"
	}
	load := ""
	if m.LoadAvg1m > 0 {
		load = fmt.Sprintf(", load average %.2f at the end", m.LoadAvg1m)
	}
	fmt.Fprintf(w, "peak resident memory %s (VmHWM); machine: %d CPUs, %s/%s, %s, %s%s\n", rss, m.CPUs, m.OS, m.Arch, model, m.Go, load)
	batch := "engine default"
	if r.MaxBatch > 0 {
		batch = strconv.Itoa(r.MaxBatch)
	}
	if r.Writers > 0 {
		batch += fmt.Sprintf(", %d PostgreSQL writers", r.Writers)
	}
	rounds := ""
	if r.Rounds > 1 {
		rounds = fmt.Sprintf(" in each of %d rounds (rows in turn; figures over all rounds)", r.Rounds)
	}
	_, err := fmt.Fprintf(w, "%s per scenario after %s of warm-up%s, %d workers, %d workspaces (many), max batch %s; a pair is hold + capture of content_rewrite; http rows make 2 requests per pair\n",
		time.Duration(r.DurationSec*float64(time.Second)), time.Duration(r.WarmupSec*float64(time.Second)), rounds, r.Workers, r.Workspaces, batch)
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// fmtCount prints a rate with thousands separators.
func fmtCount(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtRatio(v float64) string {
	return strconv.FormatFloat(v, 'f', ratioDecimals(v), 64)
}

// ratioDecimals is how many decimals fmtRatio prints: three significant
// digits from 1 up.
func ratioDecimals(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	}
	return 2
}

// fmtMicros prints a latency with three significant digits.
func fmtMicros(us float64) string {
	switch {
	case us <= 0:
		return "-"
	case us < 1000:
		return strconv.FormatFloat(us, 'f', sigDecimals(us), 64) + "µs"
	case us < 1e6:
		ms := us / 1000
		return strconv.FormatFloat(ms, 'f', sigDecimals(ms), 64) + "ms"
	}
	s := us / 1e6
	return strconv.FormatFloat(s, 'f', sigDecimals(s), 64) + "s"
}

func sigDecimals(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	}
	return 2
}

// progress shows one scenario: on a terminal a line redrawn in place with
// \r, otherwise a plain line a second.
type progress struct {
	w        io.Writer
	terminal bool
	name     string
	duration time.Duration
	mu       sync.Mutex
	start    time.Time
}

func newProgress(w io.Writer, terminal bool, name string, d time.Duration) *progress {
	return &progress{w: w, terminal: terminal, name: name, duration: d}
}

func (p *progress) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
	} else {
		fmt.Fprintln(p.w, s)
	}
}

func (p *progress) setup(what string) { p.line(fmt.Sprintf("scenario %s: %s", p.name, what)) }

func (p *progress) fail(err error) {
	p.line(fmt.Sprintf("scenario %s: failed: %v", p.name, err))
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) done(r Result) {
	p.line(fmt.Sprintf("scenario %s: %.1fs %s pairs/s, p99 %s (done)", p.name, r.Seconds, fmtCount(r.PairsPerSec), fmtMicros(r.P99us)))
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

// run shows the progress of pairs from start until the returned stop.
func (p *progress) run(start time.Time, pairs *atomic.Int64) (stop func()) {
	every := time.Second
	if p.terminal {
		every = 100 * time.Millisecond
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				el := now.Sub(start)
				rate := float64(pairs.Load()) / el.Seconds()
				if p.terminal {
					p.line(fmt.Sprintf("%-20s %s %4.1fs/%.1fs %10s pairs/s", p.name, bar(el, p.duration, 30), el.Seconds(), p.duration.Seconds(), fmtCount(rate)))
				} else {
					p.line(fmt.Sprintf("scenario %s: %.1fs %s pairs/s", p.name, el.Seconds(), fmtCount(rate)))
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

func bar(el, total time.Duration, width int) string {
	n := width
	if total > 0 && el < total {
		n = int(float64(width) * float64(el) / float64(total))
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
