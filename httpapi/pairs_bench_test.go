package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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

// startBenchNoop is the bench's no-op reference (bench/http.go): it decodes
// the hold's body and answers a charge of the same shape.
func startBenchNoop(b *testing.B) benchTarget {
	type holdRequest struct {
		Operation   string            `json:"operation"`
		Quantity    int64             `json:"quantity,omitempty"`
		MemberID    *string           `json:"member_id,omitempty"`
		Capture     bool              `json:"capture,omitempty"`
		HoldSeconds int64             `json:"hold_seconds,omitempty"`
		Metadata    map[string]string `json:"metadata,omitempty"`
	}
	answer := func(w http.ResponseWriter, status int, ws, id, st string) {
		now := time.Now().UTC()
		v := credits.ChargeView{
			Charge: credits.Charge{ID: id, WorkspaceID: ws, Operation: "content_rewrite", Quantity: 1, Cost: 1,
				Status: st, Metadata: map[string]string{}, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)},
			Balance: &credits.Balance{WorkspaceID: ws, Plan: "bench", MonthlyCredits: credits.MaxCost,
				Granted: credits.MaxCost, Available: credits.MaxCost - 1, Used: 1, CycleStart: now, CycleEnd: now.AddDate(0, 1, 0)},
		}
		data, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(data)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/workspaces/{id}/charges", func(w http.ResponseWriter, r *http.Request) {
		var req holdRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || r.Header.Get("Idempotency-Key") == "" {
			http.Error(w, `{"code":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		answer(w, http.StatusCreated, r.PathValue("id"), "noop_"+r.Header.Get("Idempotency-Key"), credits.StatusHeld)
	})
	mux.HandleFunc("POST /v1/charges/{id}/capture", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		answer(w, http.StatusOK, "ws", r.PathValue("id"), credits.StatusCaptured)
	})
	return benchTarget{c: benchClient(b, benchServer(b, mux), "noop-secret"), ws: "hot"}
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
