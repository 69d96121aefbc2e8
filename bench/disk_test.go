package bench

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestDiskProbe(t *testing.T) {
	dir := t.TempDir()
	procs := runtime.GOMAXPROCS(0)
	p, err := probeDisk(context.Background(), dir, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !diskPhaseOK(p.Alone) || !diskPhaseOK(p.Busy) || p.BusyThreads != runtime.NumCPU() {
		t.Errorf("probe %+v", p)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after the probe, was %d", got, procs)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("the probe left %v (%v)", left, err)
	}
}

func TestDiskProbeFails(t *testing.T) {
	if _, err := probeDisk(context.Background(), "/nonexistent/dir", 10*time.Millisecond); err == nil {
		t.Error("a probe in a missing directory succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := probeDisk(ctx, t.TempDir(), time.Second); err == nil {
		t.Error("a cancelled probe succeeded")
	}
}

func TestSpinRunsOneProcessorMorePerThread(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	stop := spin(2)
	during := runtime.GOMAXPROCS(0)
	stop()
	if during != procs+2 || runtime.GOMAXPROCS(0) != procs {
		t.Errorf("GOMAXPROCS %d while spinning, %d after; was %d", during, runtime.GOMAXPROCS(0), procs)
	}
}
