package httpapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/bench"
	"github.com/credits-dev/credits/client"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
)

// BenchmarkHTTPPairs is `credits bench`'s http/hot row as a Go benchmark: a
// hold and a capture through the project's client, over keep-alive
// connections on a real listener, against the API over SQLite (api) and
// against a no-op handler decoding the same JSON (noop). It reports the CPU
// of the whole process per pair, which on a shared machine says more than
// pairs per second:
//
//	go test -run '^$' -bench HTTPPairs -cpuprofile cpu.out ./httpapi
func BenchmarkHTTPPairs(b *testing.B) {
	b.Run("api", func(b *testing.B) { benchPairs(b, startBenchAPI(b)) })
	b.Run("noop", func(b *testing.B) { benchPairs(b, startBenchNoop(b)) })
}

const benchWorkers = 64

// benchServer serves like `credits serve` (timeouts, write deadlines).
func benchServer(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// benchClient is the bench's client: keep-alive connections for every
// worker, no retries.
func benchClient(b *testing.B, base, secret string) *client.Client {
	tr := &http.Transport{MaxIdleConns: 2 * benchWorkers, MaxIdleConnsPerHost: 2 * benchWorkers, IdleConnTimeout: 90 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	return client.New(base, secret, client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}), client.WithRetries(0, 0))
}

type benchTarget struct {
	c  *client.Client
	ws string
}

func startBenchAPI(b *testing.B) benchTarget {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "credits.db"))
	if err != nil {
		b.Fatal(err)
	}
	cat := credits.DefaultCatalog()
	cat.Plans = []credits.Plan{{ID: "bench", Name: "Bench", MonthlyCredits: credits.MaxCost, Currency: "usd"}}
	eng, err := ledger.New(st, cat, ledger.Options{Writers: 4})
	if err != nil {
		b.Fatal(err)
	}
	authn, _, err := auth.New(ctx, st, auth.Options{AdminKey: adminKey})
	if err != nil {
		b.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Engine: eng, Auth: authn, WriteTimeout: 30 * time.Second})
	base := benchServer(b, api)
	b.Cleanup(func() {
		api.Drain()
		eng.Close()
		st.Close()
	})
	admin := benchClient(b, base, adminKey)
	if _, err := admin.CreateWorkspace(ctx, client.WorkspaceParams{ID: "hot", Name: "hot", Plan: "bench"}); err != nil {
		b.Fatal(err)
	}
	k, err := admin.CreateAPIKey(ctx, "bench", "service")
	if err != nil {
		b.Fatal(err)
	}
	return benchTarget{c: benchClient(b, base, k.Secret), ws: "hot"}
}

// startBenchNoop is credits bench's no-op reference: it decodes the hold's
// body and answers a charge of the same shape.
func startBenchNoop(b *testing.B) benchTarget {
	return benchTarget{c: benchClient(b, benchServer(b, bench.NoopHandler()), "noop-secret"), ws: "hot"}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchPairs(b *testing.B, t benchTarget) {
	ctx := context.Background()
	// Warm the connections up outside the timing.
	if _, err := t.c.Hold(ctx, t.ws, client.ChargeParams{Operation: "content_rewrite", IdempotencyKey: "warm"}); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	var failed atomic.Pointer[error]
	b.SetParallelism((benchWorkers + 1) / 2) // × GOMAXPROCS 2
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := "k" + strconv.FormatInt(seq.Add(1), 10)
			ch, err := t.c.Hold(ctx, t.ws, client.ChargeParams{Operation: "content_rewrite", IdempotencyKey: key})
			if err == nil {
				_, err = t.c.Capture(ctx, ch.ID)
			}
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		}
	})
	cpu := processCPU() - cpu0
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(errors.Join(*err))
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/pair")
}
