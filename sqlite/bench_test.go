package sqlite_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// benchCatalog has a plan big enough that a benchmark never runs out.
func benchCatalog() credits.Catalog {
	c := credits.DefaultCatalog()
	c.Plans = append(c.Plans, credits.Plan{ID: "bench", Name: "Bench", MonthlyCredits: credits.MaxCost, Currency: "usd"})
	return c
}

// BenchmarkPairs measures hold+capture pairs through the engine on a durable
// SQLite store, 64 concurrent callers (32 per CPU on 2 CPUs), on many
// workspaces and on one hot workspace.
func BenchmarkPairs(b *testing.B) {
	for _, shape := range []struct {
		name       string
		workspaces int
	}{{"many", 10000}, {"hot", 1}} {
		b.Run(shape.name, func(b *testing.B) {
			st := open(b)
			e, err := ledger.New(st, benchCatalog(), ledger.Options{SweepInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			for i := range shape.workspaces {
				if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: fmt.Sprint("w", i), Name: "w", Plan: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
			var seq atomic.Int64
			b.SetParallelism(32)
			before := e.Stats()
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					ws := fmt.Sprint("w", n%int64(shape.workspaces))
					r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: ws, IdempotencyKey: fmt.Sprint("k", n), Operation: "content_rewrite"})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := e.Capture(ctx, r.Charge.ID); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
			// CPU time per pair is steadier than wall time on a busy machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/pair")
			stats := e.Stats()
			b.ReportMetric(float64(stats.Commands-before.Commands)/float64(stats.Batches-before.Batches), "cmds/batch")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
