package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/client"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
)

// newHTTPClient is the Go client the HTTP rows use: keep-alive connections
// for every worker, and no retries (a failed request is counted, not
// hidden).
func newHTTPClient(baseURL, secret string, workers int) (*client.Client, *http.Transport) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        workers * 2,
		MaxIdleConnsPerHost: workers * 2,
		IdleConnTimeout:     90 * time.Second,
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return client.New(baseURL, secret, client.WithHTTPClient(hc), client.WithRetries(0, 0)), tr
}

// httpTarget is the HTTP API: a `credits serve` the bench started, or the
// server at Config.ServerURL.
type httpTarget struct {
	c      *client.Client
	tr     *http.Transport
	stop   func() error // nil with --url
	dbPath string
	ids    []string
	op     string
	// streams is open on the workspace in the +streams row.
	streams *streams
	events0 int64 // the streams' events when measuring began
	base    string
	admin   string
	// meter reads the engine of a server started in this process (nil
	// with --url).
	meter *writerMeter
}

func newHTTPTarget(ctx context.Context, cfg *Config, s scenario, tmp string, ids []string) (_ *httpTarget, err error) {
	t := &httpTarget{ids: ids, op: benchOperation}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	base, key, plan := cfg.ServerURL, cfg.AdminKey, benchPlan.ID
	if base == "" {
		key = randomKey()
		t.dbPath = filepath.Join(tmp, fileName(s.name)+".db")
		conf := filepath.Join(tmp, "catalog.yaml")
		if err := os.WriteFile(conf, []byte(CatalogYAML()), 0o600); err != nil {
			return nil, err
		}
		if base, t.stop, err = cfg.StartServer(ctx, ServerParams{DB: t.dbPath, Config: conf, AdminKey: key,
			Engine: func(e *ledger.Engine, st ledger.Store) { t.meter = newWriterMeter(e, st) }}); err != nil {
			return nil, fmt.Errorf("starting credits serve: %w", err)
		}
	}
	t.c, t.tr = newHTTPClient(base, key, cfg.Workers)
	t.base, t.admin = base, key
	if cfg.ServerURL != "" {
		// A running server has its own catalog: take its largest plan, and
		// the bench's operation, which it must price.
		cat, err := t.c.Catalog(ctx)
		if err != nil {
			return nil, fmt.Errorf("--url %s: %w", cfg.ServerURL, err)
		}
		if _, ok := cat.Operation(benchOperation); !ok {
			return nil, fmt.Errorf("--url %s: the catalog has no %s operation", cfg.ServerURL, benchOperation)
		}
		if len(cat.Plans) == 0 {
			return nil, fmt.Errorf("--url %s: the catalog has no plan", cfg.ServerURL)
		}
		plan = cat.Plans[len(cat.Plans)-1].ID
	}
	err = parallel(ctx, len(ids), cfg.Workers, func(ctx context.Context, i int) error {
		_, err := t.c.CreateWorkspace(ctx, client.WorkspaceParams{ID: ids[i], Name: ids[i], Plan: plan})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating workspaces: %w", err)
	}
	// Pairs go with a service API key, as a builder's backend sends them
	// (the admin key is for provisioning).
	k, err := t.c.CreateAPIKey(ctx, "credits bench "+s.name, "service")
	if err != nil {
		return nil, fmt.Errorf("creating a service API key: %w", err)
	}
	if s.streams > 0 {
		if t.streams, err = openStreams(ctx, base, k.Secret, ids[0], s.streams, t.tr.TLSClientConfig); err != nil {
			return nil, fmt.Errorf("opening %d balance streams: %w", s.streams, err)
		}
	}
	t.tr.CloseIdleConnections()
	t.c, t.tr = newHTTPClient(base, k.Secret, cfg.Workers)
	return t, nil
}

// StartMeasuring starts the server's writer counters, when it has them.
func (t *httpTarget) StartMeasuring() {
	if t.meter != nil {
		t.meter.start()
	}
	if t.streams != nil {
		t.events0 = t.streams.events.Load()
	}
}

// Finish reports the server's writer during the load, when it runs in
// this process, and checks that every open stream received the final
// balance.
func (t *httpTarget) Finish(ctx context.Context, res *Result) error {
	if t.streams != nil {
		// Counted as the load ends, before the final balance's fold, as
		// the row's seconds are.
		res.streamEvents = t.streams.events.Load() - t.events0
	}
	if t.meter != nil {
		t.meter.finish(res)
	} else {
		res.setFigures()
	}
	if t.streams == nil {
		return nil
	}
	b, err := t.c.Balance(ctx, t.ids[0])
	if err != nil {
		return err
	}
	res.Streams = len(t.streams.last)
	res.StreamsFinal = t.streams.waitFinal(b.Used, 10*time.Second)
	t.streams.close()
	t.streams = nil
	if res.StreamsFinal != res.Streams {
		return fmt.Errorf("%d of %d streams never received the final balance (used %d)", res.Streams-res.StreamsFinal, res.Streams, b.Used)
	}
	return nil
}

func randomKey() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "bench-" + hex.EncodeToString(b[:])
}

func (t *httpTarget) Pair(ctx context.Context, workspaceID, key string) error {
	return clientPair(ctx, t.c, t.op, workspaceID, key)
}

func clientPair(ctx context.Context, c *client.Client, op, workspaceID, key string) error {
	ch, err := c.Hold(ctx, workspaceID, client.ChargeParams{Operation: op, IdempotencyKey: key})
	if err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	if _, err := c.Capture(ctx, ch.ID); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	return nil
}

// Verify stops the server the bench started and checks a few workspaces in
// its database; against --url it checks their balances add up.
func (t *httpTarget) Verify(ctx context.Context) error {
	if t.stop == nil {
		var errs []error
		step := max(1, len(t.ids)/5)
		for i := 0; i < len(t.ids); i += step {
			b, err := t.c.Balance(ctx, t.ids[i])
			if err != nil {
				errs = append(errs, err)
			} else if b.Available < 0 || b.Held < 0 || b.Available+b.Held+b.Used > b.Granted {
				errs = append(errs, fmt.Errorf("workspace %s: the balance does not add up: %+v", t.ids[i], b))
			}
		}
		return errors.Join(errs...)
	}
	stop := t.stop
	t.stop = nil
	if err := stop(); err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, t.dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	return ledger.Check(ctx, st)
}

func (t *httpTarget) Close() error {
	if t.streams != nil {
		t.streams.close()
		t.streams = nil
	}
	if t.tr != nil {
		t.tr.CloseIdleConnections()
	}
	if t.stop != nil {
		return t.stop()
	}
	return nil
}

// noopTarget is the HTTP limit: a net/http handler on a local port that
// decodes the same request bodies as the API and answers a charge of the
// same shape, driven by the same client. Everything the API adds over it is
// the service's cost.
type noopTarget struct {
	*noopHandler
	c      *client.Client
	tr     *http.Transport
	srv    *http.Server
	served chan error
	pairs  atomic.Int64
}

// noopHandler answers holds and captures as the API would, doing nothing
// else; it counts what it served.
type noopHandler struct {
	holds atomic.Int64
	caps  atomic.Int64
}

// NoopHandler is the HTTP limit's handler, for other benchmarks
// (httpapi's BenchmarkHTTPPairs) to measure against the same reference.
func NoopHandler() http.Handler { return (&noopHandler{}).routes() }

func (h *noopHandler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/workspaces/{id}/charges", h.hold)
	mux.HandleFunc("POST /v1/charges/{id}/capture", h.capture)
	return mux
}

func newNoopTarget(ctx context.Context, cfg *Config) (*noopTarget, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &noopTarget{noopHandler: &noopHandler{}, served: make(chan error, 1)}
	t.srv = &http.Server{Handler: t.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() { t.served <- t.srv.Serve(ln) }()
	t.c, t.tr = newHTTPClient("http://"+ln.Addr().String(), randomKey(), cfg.Workers)
	return t, nil
}

// noopHoldRequest is the API's hold body.
type noopHoldRequest struct {
	Operation   string            `json:"operation"`
	Quantity    int64             `json:"quantity,omitempty"`
	MemberID    *string           `json:"member_id,omitempty"`
	Capture     bool              `json:"capture,omitempty"`
	HoldSeconds int64             `json:"hold_seconds,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func (h *noopHandler) hold(w http.ResponseWriter, r *http.Request) {
	var req noopHoldRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || r.Header.Get("Idempotency-Key") == "" {
		http.Error(w, `{"code":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	h.holds.Add(1)
	noopAnswer(w, http.StatusCreated, r.PathValue("id"), "noop_"+r.Header.Get("Idempotency-Key"), credits.StatusHeld)
}

func (h *noopHandler) capture(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)); err != nil {
		http.Error(w, `{"code":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	h.caps.Add(1)
	noopAnswer(w, http.StatusOK, "ws", r.PathValue("id"), credits.StatusCaptured)
}

// noopAnswer writes a charge with a balance, as the API answers.
func noopAnswer(w http.ResponseWriter, status int, workspaceID, chargeID, chargeStatus string) {
	now := time.Now().UTC()
	v := credits.ChargeView{
		Charge: credits.Charge{ID: chargeID, WorkspaceID: workspaceID, Operation: benchOperation, Quantity: 1, Cost: 1,
			Status: chargeStatus, Metadata: map[string]string{}, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)},
		Balance: &credits.Balance{WorkspaceID: workspaceID, Plan: benchPlan.ID, MonthlyCredits: benchPlan.MonthlyCredits,
			Granted: benchPlan.MonthlyCredits, Available: benchPlan.MonthlyCredits - 1, Used: 1, CycleStart: now, CycleEnd: now.AddDate(0, 1, 0)},
	}
	data, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (t *noopTarget) Pair(ctx context.Context, workspaceID, key string) error {
	if err := clientPair(ctx, t.c, benchOperation, workspaceID, key); err != nil {
		return err
	}
	t.pairs.Add(1)
	return nil
}

// Verify checks that the handler saw every request the pairs made.
func (t *noopTarget) Verify(context.Context) error {
	if h, c, p := t.holds.Load(), t.caps.Load(), t.pairs.Load(); h < p || c < p {
		return fmt.Errorf("noop: %d pairs but %d holds and %d captures received", p, h, c)
	}
	return nil
}

func (t *noopTarget) Close() error {
	t.tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := t.srv.Shutdown(ctx)
	if e := <-t.served; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
