package ai_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
	"github.com/credits-dev/credits/storetest"
)

// counting wraps a provider and counts its calls.
type counting struct {
	ai.Provider
	calls atomic.Int64
}

func (c *counting) Run(ctx context.Context, t ai.Task) (ai.Result, error) {
	c.calls.Add(1)
	return c.Provider.Run(ctx, t)
}

type bundle struct {
	gw       *ai.Gateway
	engine   *ledger.Engine
	store    *sqlite.Store
	provider *counting
	clock    *storetest.Clock
}

func setup(t *testing.T, p ai.Provider, timeout time.Duration, logger ...*slog.Logger) *bundle {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "credits.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := storetest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	e, err := ledger.New(st, credits.DefaultCatalog(), ledger.Options{NowFunc: clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, _, err := e.CreateWorkspace(context.Background(), ledger.CreateWorkspaceParams{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	cp := &counting{Provider: p}
	cfg := ai.GatewayConfig{Engine: e, Provider: cp, Store: st, Timeout: timeout, NowFunc: clk.Now}
	if len(logger) > 0 {
		cfg.Logger = logger[0]
	}
	gw := ai.NewGateway(cfg)
	return &bundle{gw: gw, engine: e, store: st, provider: cp, clock: clk}
}

func str(s string) *string { return &s }

func (b *bundle) balance(t *testing.T) credits.Balance {
	t.Helper()
	bal, err := b.engine.Balance(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	if bal.Available+bal.Held+bal.Used != bal.Granted {
		t.Fatalf("unbalanced %+v", bal)
	}
	if err := ledger.Check(context.Background(), b.store); err != nil {
		t.Fatal(err)
	}
	return bal
}

func (b *bundle) ledgerTypes(t *testing.T) string {
	t.Helper()
	p, err := b.engine.Ledger(context.Background(), "w", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(p.Entries) - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("%s%+d", p.Entries[i].Type, p.Entries[i].Amount))
	}
	return strings.Join(out, " ")
}

func TestOperations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op         string
		prompt     string
		text       string
		cost       int64
		wantText   string
		wantWidth  int
		wantAvatar bool
	}{
		{op: "content_rewrite", prompt: "make it friendlier", text: "we sell   shoes", cost: 1, wantText: "[demo rewrite: make it friendlier] We sell shoes."},
		{op: "section_generation", prompt: "about our bakery", cost: 10, wantText: "[demo section]\nAbout Our Bakery"},
		{op: "image_1k", prompt: "a red bicycle", cost: 30, wantWidth: 1024},
		{op: "image_2k", prompt: "a red bicycle", cost: 60, wantWidth: 2048},
		{op: "avatar_selection", prompt: "friendly", cost: 0, wantWidth: ai.AvatarSize, wantAvatar: true},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			t.Parallel()
			b := setup(t, ai.Demo{}, time.Second)
			p := ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: tt.op, Prompt: str(tt.prompt), Text: str(tt.text)}
			resp, err := b.gw.Run(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Charge.Status != "captured" || resp.Charge.Cost != tt.cost || resp.Charge.Operation != tt.op || resp.Charge.Balance.Used != tt.cost {
				t.Fatalf("charge %+v", resp.Charge)
			}
			if tt.wantText != "" && !strings.HasPrefix(resp.Result.Text, tt.wantText) {
				t.Fatalf("text %q, want prefix %q", resp.Result.Text, tt.wantText)
			}
			if tt.wantWidth != 0 {
				img := resp.Result.Image
				data, err := base64.StdEncoding.DecodeString(img.DataBase64)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := png.DecodeConfig(bytes.NewReader(data))
				if err != nil || cfg.Width != tt.wantWidth || cfg.Height != tt.wantWidth || img.Width != tt.wantWidth || img.MimeType != "image/png" {
					t.Fatalf("image %dx%d (%v), declared %dx%d %s", cfg.Width, cfg.Height, err, img.Width, img.Height, img.MimeType)
				}
			}
			if tt.wantAvatar != (resp.Result.Avatar != nil) {
				t.Fatalf("avatar %+v", resp.Result.Avatar)
			}
			if got := b.ledgerTypes(t); got != fmt.Sprintf("grant+250 hold%+d capture+0", -tt.cost) {
				t.Fatalf("ledger %s", got)
			}
			if bal := b.balance(t); bal.Used != tt.cost || bal.Held != 0 {
				t.Fatalf("balance %+v", bal)
			}
		})
	}
}

func TestInsufficientNeverCallsTheProvider(t *testing.T) {
	t.Parallel()
	b := setup(t, ai.Demo{}, time.Second)
	ctx := context.Background()
	for i := range 4 {
		if _, err := b.gw.Run(ctx, ai.RunParams{WorkspaceID: "w", IdempotencyKey: fmt.Sprint("img", i), Operation: "image_2k", Prompt: str("x")}); err != nil {
			t.Fatal(err)
		}
	}
	calls := b.provider.calls.Load()
	_, err := b.gw.Run(ctx, ai.RunParams{WorkspaceID: "w", IdempotencyKey: "more", Operation: "image_2k", Prompt: str("x")})
	e := credits.AsError(err)
	if e == nil || e.Code != credits.CodeInsufficientCredits || e.Insufficient.Balance != 10 || e.Insufficient.Required != 60 || e.Insufficient.Upgrade.Plan != "starter" {
		t.Fatalf("err %v", err)
	}
	if b.provider.calls.Load() != calls {
		t.Fatal("the provider was called without credits")
	}
	if bal := b.balance(t); bal.Available != 10 || bal.Held != 0 {
		t.Fatalf("balance %+v", bal)
	}
}

func TestFailureChargesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       ai.Provider
		timeout time.Duration
		cancel  bool
	}{
		{"provider error", ai.Demo{}, time.Second, false},
		{"timeout", ai.Demo{Delay: 5 * time.Second}, 50 * time.Millisecond, false},
		{"cancelled request", ai.Demo{Delay: 5 * time.Second}, 10 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.p, tt.timeout)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				go func() { time.Sleep(50 * time.Millisecond); cancel() }()
			}
			prompt := "a cat"
			if tt.name == "provider error" {
				prompt = "a cat " + ai.FailMarker
			}
			resp, err := b.gw.Run(ctx, ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Prompt: str(prompt)})
			if credits.ErrorCode(err) != credits.CodeOperationFailed {
				t.Fatalf("err %v, want operation_failed", err)
			}
			if resp.Result.Image != nil || resp.Result.Text != "" || resp.Charge.ID != "" {
				t.Fatalf("a failure answered a result: %+v", resp)
			}
			if bal := b.balance(t); bal.Available != 250 || bal.Held != 0 || bal.Used != 0 {
				t.Fatalf("balance %+v", bal)
			}
			if got := b.ledgerTypes(t); got != "grant+250 hold-30 release+30" {
				t.Fatalf("ledger %s", got)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, ai.Demo{}, time.Second)
	ctx := context.Background()
	p := ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "section_generation", Prompt: str("pricing")}
	first, err := b.gw.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.gw.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(first)
	c, _ := json.Marshal(again)
	if !bytes.Equal(a, c) || b.provider.calls.Load() != 1 {
		t.Fatalf("retry after success: %d calls\n%s\n%s", b.provider.calls.Load(), a, c)
	}
	if bal := b.balance(t); bal.Used != 10 {
		t.Fatalf("charged %d", bal.Used)
	}
	other := p
	other.Prompt = str("about us")
	if _, err := b.gw.Run(ctx, other); credits.ErrorCode(err) != credits.CodeIdempotencyKeyReused {
		t.Fatalf("another body: %v", err)
	}

	// After a failure the same key runs again, and is charged once.
	failing := ai.RunParams{WorkspaceID: "w", IdempotencyKey: "f", Operation: "content_rewrite", Text: str("hello " + ai.FailMarker)}
	if _, err := b.gw.Run(ctx, failing); credits.ErrorCode(err) != credits.CodeOperationFailed {
		t.Fatal(err)
	}
	if _, err := b.gw.Run(ctx, failing); credits.ErrorCode(err) != credits.CodeOperationFailed {
		t.Fatal(err)
	}
	if got := b.provider.calls.Load(); got != 3 {
		t.Fatalf("%d provider calls, want 3", got)
	}
	if bal := b.balance(t); bal.Used != 10 || bal.Available != 240 {
		t.Fatalf("balance %+v", bal)
	}
}

func TestConcurrentRetriesRunOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, ai.Demo{Delay: 100 * time.Millisecond}, 5*time.Second)
	ctx := context.Background()
	p := ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Prompt: str("a boat")}
	var wg sync.WaitGroup
	var ok, busy atomic.Int64
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.gw.Run(ctx, p)
			switch credits.ErrorCode(err) {
			case "":
				ok.Add(1)
			case credits.CodeRequestInProgress:
				busy.Add(1)
			default:
				t.Errorf("run: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() < 1 || ok.Load()+busy.Load() != 10 || b.provider.calls.Load() != 1 {
		t.Fatalf("%d ok, %d in progress, %d provider calls", ok.Load(), busy.Load(), b.provider.calls.Load())
	}
	if bal := b.balance(t); bal.Used != 30 {
		t.Fatalf("used %d", bal.Used)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, ai.Demo{}, time.Second)
	long := strings.Repeat("x", ai.MaxPromptChars+1)
	tests := []struct {
		p     ai.RunParams
		field string
	}{
		{ai.RunParams{WorkspaceID: "w", Operation: "content_rewrite", Text: str("x")}, "Idempotency-Key"},
		{ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "video", Prompt: str("x")}, "operation"},
		{ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite"}, "text"},
		{ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Text: str("  ")}, "text"},
		{ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "content_rewrite", Text: str(strings.Repeat("y", ai.MaxTextChars+1))}, "text"},
		{ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "section_generation"}, "prompt"},
		{ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Prompt: str(long)}, "prompt"},
		{ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "image_1k", Prompt: str("x"), MemberID: str("")}, "member_id"},
	}
	for _, tt := range tests {
		_, err := b.gw.Run(context.Background(), tt.p)
		if e := credits.AsError(err); e == nil || e.Code != credits.CodeInvalidRequest || e.Field != tt.field {
			t.Errorf("%+v: %v, want invalid_request on %s", tt.p, err, tt.field)
		}
	}
	_, err := b.gw.Run(context.Background(), ai.RunParams{WorkspaceID: "nope", IdempotencyKey: "k", Operation: "image_1k", Prompt: str("x")})
	if credits.ErrorCode(err) != credits.CodeNotFound {
		t.Fatalf("unknown workspace: %v", err)
	}
	if b.provider.calls.Load() != 0 {
		t.Fatal("bad input reached the provider")
	}
	if bal := b.balance(t); bal.Available != 250 {
		t.Fatalf("balance %+v", bal)
	}
}

// A provider failure is logged with the charge id, never with the API key,
// even when the provider echoes the key back.
func TestFailureLogsChargeNotKey(t *testing.T) {
	t.Parallel()
	const key = "sk-very-secret-key-0123456789"
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"error":{"message":"bad key %s","type":"server_error","code":"boom"}}`, r.Header.Get("Authorization"))
	}))
	defer fake.Close()
	p, err := ai.NewOpenAI(ai.OpenAIConfig{BaseURL: fake.URL, APIKey: key, TextModel: "m", ImageModel: "i"})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	b := setup(t, p, time.Second, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	_, err = b.gw.Run(context.Background(), ai.RunParams{WorkspaceID: "w", IdempotencyKey: "k", Operation: "section_generation", Prompt: str("x")})
	if credits.ErrorCode(err) != credits.CodeOperationFailed || strings.Contains(err.Error(), key) {
		t.Fatalf("err %v", err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if strings.Contains(out, key) || strings.Contains(out, "very-secret") {
		t.Fatalf("the log holds the API key:\n%s", out)
	}
	page, _ := b.engine.Ledger(context.Background(), "w", 10, "")
	chargeID := page.Entries[0].ChargeID
	if chargeID == "" || !strings.Contains(out, chargeID) {
		t.Fatalf("the log does not name the charge %q:\n%s", chargeID, out)
	}
	if bal := b.balance(t); bal.Available != 250 {
		t.Fatalf("balance %+v", bal)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
