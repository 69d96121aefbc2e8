package bench

import (
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
)

// MemoryPoint is the process's memory once a number of workspaces exist.
type MemoryPoint struct {
	Workspaces int   `json:"workspaces"`
	RSS        int64 `json:"rss_bytes"`  // VmRSS: resident now
	Heap       int64 `json:"heap_bytes"` // Go heap in use
}

// MemoryReport is how memory grows with the number of workspaces, on the
// engine over SQLite, and the peak while pairs ran across all of them.
type MemoryReport struct {
	Points      []MemoryPoint `json:"points"`
	PairsPerSec float64       `json:"pairs_per_s"` // the load across every workspace
	PeakRSS     int64         `json:"peak_rss_bytes"`
	Targets     []Verdict     `json:"targets,omitempty"` // the memory target (targets.go)
	cpus        int
}

// Memory creates n workspaces through the engine on a fresh SQLite file
// (reading memory at each power of ten), then runs pairs uniform over all
// of them for d, and reports. Run it in a process of its own: the peak is
// the process's.
func Memory(ctx context.Context, n int, d time.Duration, workers int, progress io.Writer) (*MemoryReport, error) {
	tmp, err := os.MkdirTemp("", "credits-bench-memory-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	st, err := sqlite.Open(ctx, filepath.Join(tmp, "memory.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	e, err := ledger.New(st, Catalog(), ledger.Options{SweepInterval: -1})
	if err != nil {
		return nil, err
	}
	defer e.Close()

	rep := &MemoryReport{}
	id := func(i int) string { return "mem-" + strconv.Itoa(i) }
	created := 0
	for next := 1000; created < n; next *= 10 {
		next = min(next, n)
		from := created
		if err := parallel(ctx, next-from, max(workers, 256), func(ctx context.Context, i int) error {
			_, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: id(from + i), Name: "memory", Plan: benchPlan.ID})
			return err
		}); err != nil {
			return rep, fmt.Errorf("creating workspaces: %w", err)
		}
		created = next
		rep.Points = append(rep.Points, readMemory(created))
		fmt.Fprintf(progress, "memory: %d workspaces, %s resident\n", created, mib(rep.Points[len(rep.Points)-1].RSS))
	}
	// Pairs across every workspace: the engine's cache sees them all.
	var pairs atomic.Int64
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for w := range workers {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), 7))
			for seq := 0; ctx.Err() == nil && time.Now().Before(end); seq++ {
				ws := id(rng.IntN(n))
				r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: ws, IdempotencyKey: fmt.Sprint("m", w, "-", seq), Operation: benchOperation})
				if err == nil {
					_, err = e.Capture(ctx, r.Charge.ID)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				pairs.Add(1)
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return rep, *p
	}
	rep.PairsPerSec = float64(pairs.Load()) / time.Since(start).Seconds()
	rep.Points = append(rep.Points, readMemory(n))
	rep.PeakRSS = PeakRSS()
	rep.cpus = runtime.NumCPU()
	rep.Targets = rep.judge()
	return rep, nil
}

func readMemory(workspaces int) MemoryPoint {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return MemoryPoint{Workspaces: workspaces, RSS: currentRSS(), Heap: int64(ms.HeapInuse)}
}

// currentRSS is VmRSS from /proc/self/status, or 0.
func currentRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return statusKB(string(data), "VmRSS:")
}

func statusKB(status, key string) int64 {
	for line := range strings.SplitSeq(status, "\n") {
		v, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return n * 1024
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteTable prints the memory figures.
func (r *MemoryReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%-22s %10s %10s\n", "workspaces", "resident", "Go heap")
	for i, p := range r.Points {
		label := strconv.Itoa(p.Workspaces)
		if i == len(r.Points)-1 {
			label += " (after load)"
		}
		fmt.Fprintf(w, "%-22s %10s %10s\n", label, mib(p.RSS), mib(p.Heap))
	}
	if _, err := fmt.Fprintf(w, "peak resident %s; pairs across all workspaces: %s/s\n", mib(r.PeakRSS), fmtCount(r.PairsPerSec)); err != nil {
		return err
	}
	return writeTargets(w, r.Targets, r.cpus)
}
