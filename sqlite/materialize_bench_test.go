package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// BenchmarkMaterialize measures the materializer alone: windows of
// hold+capture pairs (each pair two batches, as the engine writes them) on
// 10,000 workspaces (ids and keys shaped like credits bench's, the
// workspaces in scattered order), copied into the tables. It reports CPU
// per pair, the figure that bounds how many pairs a second the tables can
// keep up with. The window sizes are what the engine rows of credits bench
// gather (about 2,000-5,000 pairs), and what the HTTP rows gather in
// 100 ms at their rate (about 500): the smaller a window, the more of its
// workspaces' cycle and ledger-head pages each pair pays for.
func BenchmarkMaterialize(b *testing.B) {
	for _, window := range []int{500, 2_000, 5_000} {
		b.Run(fmt.Sprintf("pairs=%d", window), func(b *testing.B) { benchMaterialize(b, window) })
	}
}

func benchMaterialize(b *testing.B, window int) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "credits.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	makeWindow := pairWindows(b, s, 10_000, window)
	b.ResetTimer()
	var spent time.Duration
	var written int64
	pairs := 0
	for pairs < b.N {
		b.StopTimer()
		w := makeWindow()
		b.StartTimer()
		c0, w0 := processCPU(), bytesWritten()
		if err := s.materialize(ctx, w); err != nil {
			b.Fatal(err)
		}
		spent += processCPU() - c0
		written += bytesWritten() - w0
		pairs += window
	}
	b.ReportMetric(float64(pairs)/b.Elapsed().Seconds(), "pairs/s")
	b.ReportMetric(float64(spent.Microseconds())/float64(pairs), "cpu-µs/pair")
	if written > 0 {
		// All the process wrote meanwhile: the window's WAL frames (8 KiB
		// pages) and journal_state row, and whatever the checkpointer
		// copied back into the database file in that time.
		b.ReportMetric(float64(written)/float64(pairs), "written-B/pair")
	}
}

// bytesWritten is what the process has passed to write system calls
// (wchar in /proc/self/io), or 0 where that is not known.
func bytesWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pairWindows writes workspaces workspaces into s and returns a maker of
// windows of window hold+capture pairs on them (each pair two batches, as
// the engine writes them; ids and keys shaped like credits bench's, the
// workspaces in scattered order).
func pairWindows(b testing.TB, s *Store, workspaces, window int) func() []*record {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cycles := map[string]credits.Cycle{}
	var setup []*record
	var batch uint64
	for i := range workspaces {
		id := fmt.Sprintf("b1a2b3c4d-ws-%06d", i)
		a := ledger.Account{Workspace: credits.Workspace{ID: id, Name: id, Plan: "pro", CycleAnchor: now, CreatedAt: now},
			Cycle: credits.Cycle{N: 0, Start: now, End: now.AddDate(0, 1, 0), Granted: 1 << 40, Available: 1 << 40}}
		cycles[id] = a.Cycle
		batch++
		setup = append(setup, &record{Batch: batch, Changes: &ledger.Changes{NewWorkspaces: []ledger.Account{a}, Cycles: []ledger.CycleRow{{WorkspaceID: id, Cycle: a.Cycle}}}})
	}
	if err := s.materialize(ctx, setup); err != nil {
		b.Fatal(err)
	}
	seq := int64(1)
	pair := 0
	makeWindow := func() []*record {
		var out []*record
		for range window {
			id := fmt.Sprintf("b1a2b3c4d-ws-%06d", (pair*7919)%workspaces)
			cy := cycles[id]
			cy.Available--
			cy.Held++
			ch := credits.Charge{ID: fmt.Sprintf("ch_%012d", pair), WorkspaceID: id, Operation: "content_rewrite", Quantity: 1, Cost: 1,
				Status: credits.StatusHeld, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			hold := credits.Entry{Seq: seq, WorkspaceID: id, At: now, Type: "hold", Amount: -1, AvailableAfter: cy.Available, ChargeID: ch.ID, Operation: ch.Operation}
			seq++
			bal := credits.Balance{WorkspaceID: id, Plan: "pro", MonthlyCredits: 5000, Granted: cy.Granted, Available: cy.Available, Held: cy.Held,
				Used: cy.Used, CycleStart: cy.Start, CycleEnd: cy.End}
			res, err := appendAnswer(nil, &ledger.ChargeResult{Charge: &ch, Balance: &bal})
			if err != nil {
				b.Fatal(err)
			}
			batch++
			out = append(out, &record{Batch: batch, Changes: &ledger.Changes{
				Cycles: []ledger.CycleRow{{WorkspaceID: id, Cycle: cy}}, NewCharges: []credits.Charge{ch}, Entries: []credits.Entry{hold},
				Idempotency: []ledger.IdemRecord{{WorkspaceID: id, Key: fmt.Sprint("b1a2b3c4d-", pair%64, "-", pair/64), Fingerprint: "f", CreatedAt: now}},
			}, Results: [][]byte{res}})
			cy.Held--
			cy.Used++
			ch.Status, ch.FinalizedAt = credits.StatusCaptured, now
			capture := credits.Entry{Seq: seq, WorkspaceID: id, At: now, Type: "capture", Amount: 0, AvailableAfter: cy.Available, ChargeID: ch.ID, Operation: ch.Operation}
			seq++
			batch++
			out = append(out, &record{Batch: batch, Changes: &ledger.Changes{
				Cycles: []ledger.CycleRow{{WorkspaceID: id, Cycle: cy}}, Charges: []credits.Charge{ch}, Entries: []credits.Entry{capture},
			}})
			cycles[id] = cy
			pair++
		}
		return out
	}
	return makeWindow
}
