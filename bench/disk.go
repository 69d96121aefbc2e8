package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The disk probe measures, before the rows, what one durable write costs on
// the disk the rows' SQLite files are on: a 4 KiB write and fdatasync of a
// file written full before (as the journal's are), one after the other,
// first on an otherwise idle machine, then beside one CPU-bound thread per
// core. The second phase is the journal's situation under load: a sync
// returns to a thread that must wait for a core, and that wait, not the
// disk, is where the rows' p99 comes from (README, "What limits SQLite").

// probeBytes is the probe file's size: the writes go round it.
const probeBytes = 8 << 20

// DiskSync is one phase of the probe.
type DiskSync struct {
	Syncs  int64   `json:"syncs"`
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	P999us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
}

// DiskProbe is the probe's two phases.
type DiskProbe struct {
	Alone DiskSync `json:"alone"`
	// Busy ran beside BusyThreads threads that only spin, one per CPU.
	Busy        DiskSync `json:"beside_busy_cpus"`
	BusyThreads int      `json:"busy_threads"`
}

// probeDisk runs each phase for d in a file it makes in dir and removes.
func probeDisk(ctx context.Context, dir string, d time.Duration) (*DiskProbe, error) {
	f, err := os.CreateTemp(dir, "disk-probe-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Written full and synced first: a write into blocks the file already
	// has lets fdatasync flush the data alone, as the journal's segments do.
	zero := make([]byte, 1<<20)
	for off := int64(0); off < probeBytes; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero, off); err != nil {
			return nil, err
		}
	}
	if err := datasync(f); err != nil {
		return nil, err
	}
	p := &DiskProbe{BusyThreads: runtime.NumCPU()}
	off := int64(0)
	if p.Alone, off, err = syncLoop(ctx, f, off, d); err != nil {
		return nil, err
	}
	stop := spin(p.BusyThreads)
	p.Busy, _, err = syncLoop(ctx, f, off, d)
	stop()
	if err != nil {
		return nil, err
	}
	return p, nil
}

// syncLoop writes 4 KiB at off (and on) and syncs it, again and again for d.
func syncLoop(ctx context.Context, f *os.File, off int64, d time.Duration) (DiskSync, int64, error) {
	block := make([]byte, 4096)
	var h Histogram
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; {
		block[0]++ // a write that changes the page, as every journal write does
		t0 := time.Now()
		if _, err := f.WriteAt(block, off); err != nil {
			return DiskSync{}, off, err
		}
		if err := datasync(f); err != nil {
			return DiskSync{}, off, err
		}
		h.Record(time.Since(t0))
		off = (off + int64(len(block))) % probeBytes
	}
	if err := ctx.Err(); err != nil {
		return DiskSync{}, off, err
	}
	return DiskSync{Syncs: int64(h.Count()), P50us: us(h.Percentile(0.50)), P99us: us(h.Percentile(0.99)),
		P999us: us(h.Percentile(0.999)), MaxUs: us(h.Max())}, off, nil
}

// spin starts n threads that only burn CPU, until stop is called. Go runs
// them on n more processors (GOMAXPROCS, restored by stop), so the syncing
// goroutine never waits for Go's scheduler: only for the OS's, as a thread
// of a loaded machine does.
func spin(n int) (stop func()) {
	// One at a time: two probes (parallel tests) would otherwise restore
	// each other's GOMAXPROCS.
	spinning.Lock()
	procs := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(procs + n)
	var done atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for x := 0; !done.Load(); x++ {
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
		runtime.GOMAXPROCS(procs)
		spinning.Unlock()
	}
}

var spinning sync.Mutex

// String is the probe's line of the table's notes.
func (p *DiskProbe) String() string {
	return fmt.Sprintf("4 KiB write+fdatasync alone p50 %s, p99 %s, max %s (%d syncs); beside %d CPU-bound threads p50 %s, p99 %s, max %s (%d syncs)",
		fmtMicros(p.Alone.P50us), fmtMicros(p.Alone.P99us), fmtMicros(p.Alone.MaxUs), p.Alone.Syncs,
		p.BusyThreads, fmtMicros(p.Busy.P50us), fmtMicros(p.Busy.P99us), fmtMicros(p.Busy.MaxUs), p.Busy.Syncs)
}
