package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/client"
	"github.com/credits-dev/credits/internal/testserver"
)

func setup(t *testing.T) (*testserver.Server, *client.Client) {
	t.Helper()
	srv := testserver.Start(t, testserver.Options{KeepAlive: 20 * time.Millisecond})
	return srv, client.New(srv.URL, testserver.AdminKey)
}

func TestHoldCaptureRelease(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := context.Background()
	ws, err := c.CreateWorkspace(ctx, client.WorkspaceParams{ID: "acme", Name: "Acme"})
	if err != nil || ws.Plan != "free" {
		t.Fatalf("create: %+v %v", ws, err)
	}
	ch, err := c.Hold(ctx, "acme", client.ChargeParams{Operation: "image_1k", MemberID: "m1", Metadata: map[string]string{"page": "home"}})
	if err != nil || ch.Status != "held" || ch.Cost != 30 || ch.Balance.Available != 220 || *ch.MemberID != "m1" || ch.Metadata["page"] != "home" {
		t.Fatalf("hold: %+v %v", ch, err)
	}
	got, err := c.Capture(ctx, ch.ID)
	if err != nil || got.Status != "captured" || got.Balance.Used != 30 {
		t.Fatalf("capture: %+v %v", got, err)
	}
	h2, _ := c.Hold(ctx, "acme", client.ChargeParams{Operation: "section_generation"})
	rel, err := c.Release(ctx, h2.ID)
	if err != nil || rel.Status != "released" || rel.Balance.Available != 220 {
		t.Fatalf("release: %+v %v", rel, err)
	}
	read, err := c.Charge(ctx, ch.ID)
	if err != nil || read.Status != "captured" {
		t.Fatalf("charge: %+v %v", read, err)
	}
	var apiErr *client.Error
	if _, err := c.Release(ctx, ch.ID); !errors.As(err, &apiErr) || apiErr.Code != credits.CodeChargeNotHeld || apiErr.Status != 409 {
		t.Fatalf("release captured: %v", err)
	}
	if _, err := c.Hold(ctx, "acme", client.ChargeParams{Operation: "image_1k", Quantity: -1}); !errors.As(err, &apiErr) || apiErr.Field != "quantity" {
		t.Fatalf("bad quantity: %v", err)
	}
}

func TestInsufficientCredits(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := context.Background()
	c.CreateWorkspace(ctx, client.WorkspaceParams{ID: "w", Name: "W"})
	_, err := c.Hold(ctx, "w", client.ChargeParams{Operation: "image_2k", Quantity: 5})
	var ie *client.InsufficientCreditsError
	if !errors.As(err, &ie) {
		t.Fatalf("err %v", err)
	}
	if ie.Balance != 250 || ie.Required != 300 || ie.Shortfall != 50 || ie.Plan != "free" || ie.Upgrade == nil || ie.Upgrade.Plan != "starter" || ie.Problem.Status != 402 {
		t.Fatalf("insufficient %+v", ie)
	}
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "insufficient_credits" {
		t.Fatalf("errors.As *Error: %v", err)
	}
}

func TestIdempotentHold(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := context.Background()
	c.CreateWorkspace(ctx, client.WorkspaceParams{ID: "w", Name: "W"})
	p := client.ChargeParams{Operation: "section_generation", IdempotencyKey: "same"}
	a, err := c.Hold(ctx, "w", p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Hold(ctx, "w", p)
	if err != nil || b.ID != a.ID {
		t.Fatalf("retry: %s %v, first %s", b.ID, err, a.ID)
	}
	bal, _ := c.Balance(ctx, "w")
	if bal.Held != 10 {
		t.Fatalf("held %d", bal.Held)
	}
}

func TestPlansLedgerEstimateCatalog(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := context.Background()
	c.CreateWorkspace(ctx, client.WorkspaceParams{ID: "w", Name: "W"})
	pc, err := c.ChangePlan(ctx, "w", "starter")
	if err != nil || pc.Plan != "starter" || pc.Balance.Available != 1000 {
		t.Fatalf("plan: %+v %v", pc, err)
	}
	for range 3 {
		if _, err := c.Hold(ctx, "w", client.ChargeParams{Operation: "content_rewrite", Capture: true}); err != nil {
			t.Fatal(err)
		}
	}
	p1, err := c.Ledger(ctx, "w", 4, "")
	if err != nil || len(p1.Entries) != 4 || p1.NextCursor == nil {
		t.Fatalf("ledger page 1: %+v %v", p1, err)
	}
	p2, err := c.Ledger(ctx, "w", 4, *p1.NextCursor)
	if err != nil || len(p2.Entries) != 4 || p2.NextCursor != nil || p2.Entries[3].Type != "grant" {
		t.Fatalf("ledger page 2: %+v %v", p2, err)
	}
	est, err := c.Estimate(ctx, []credits.EstimateItem{{Operation: "section_generation", Count: 10}, {Operation: "content_rewrite", Count: 15}, {Operation: "image_1k", Count: 3}})
	if err != nil || est.Total != 205 || est.SmallestPlan == nil || *est.SmallestPlan != "free" {
		t.Fatalf("estimate: %+v %v", est, err)
	}
	cat, err := c.Catalog(ctx)
	if err != nil || len(cat.Operations) != 5 || len(cat.Plans) != 3 {
		t.Fatalf("catalog: %+v %v", cat, err)
	}
	w, err := c.Workspace(ctx, "w")
	if err != nil || w.Plan != "starter" {
		t.Fatalf("workspace: %+v %v", w, err)
	}
}

func TestSessionTokenAndStream(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.CreateWorkspace(ctx, client.WorkspaceParams{ID: "w", Name: "W"})
	tok, err := c.CreateSessionToken(ctx, "w", "alice", 10*time.Minute)
	if err != nil || tok.WorkspaceID != "w" || tok.MemberID != "alice" || !tok.ExpiresAt.Equal(testserver.Epoch.Add(10*time.Minute)) {
		t.Fatalf("token: %+v %v", tok, err)
	}
	browser := client.New(srv.URL, tok.Token)
	var mu sync.Mutex
	var seen []int64
	streamCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- browser.StreamBalance(streamCtx, "w", func(b credits.Balance) error {
			mu.Lock()
			seen = append(seen, b.Available)
			n := len(seen)
			mu.Unlock()
			if n == 2 {
				stop()
			}
			return nil
		})
	}()
	// Wait for the stream to be open, then charge as the browser.
	for srv.Engine.Subscribers("w") == 0 {
		select {
		case err := <-done:
			t.Fatalf("the stream ended before it opened: %v", err)
		case <-ctx.Done():
			t.Fatal("the stream did not open")
		case <-time.After(5 * time.Millisecond):
		}
	}
	ch, err := browser.Hold(ctx, "w", client.ChargeParams{Operation: "image_1k", Capture: true})
	if err != nil || *ch.MemberID != "alice" {
		t.Fatalf("browser charge: %+v %v", ch, err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != 250 || seen[1] != 220 {
		t.Fatalf("stream saw %v", seen)
	}
	var apiErr *client.Error
	if _, err := browser.ChangePlan(ctx, "w", "pro"); !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Fatalf("session changing plan: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	ctx := context.Background()
	k, err := c.CreateAPIKey(ctx, "backend", "service")
	if err != nil || k.Secret == "" || k.Scope != "service" {
		t.Fatalf("key: %+v %v", k, err)
	}
	svc := client.New(srv.URL, k.Secret)
	c.CreateWorkspace(ctx, client.WorkspaceParams{ID: "w", Name: "W"})
	if _, err := svc.Hold(ctx, "w", client.ChargeParams{Operation: "content_rewrite"}); err != nil {
		t.Fatal(err)
	}
	var apiErr *client.Error
	if _, err := svc.CreateAPIKey(ctx, "x", "admin"); !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Fatalf("service making keys: %v", err)
	}
	bad := client.New(srv.URL, "nope", client.WithRetries(0, 0))
	if _, err := bad.Balance(ctx, "w"); !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.RequestID == "" {
		t.Fatalf("bad key: %v", err)
	}
}

// A charge whose answer was lost is sent again with the same key and
// charged once.
func TestRetriesUseTheSameKey(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	ctx := context.Background()
	admin := client.New(srv.URL, testserver.AdminKey)
	admin.CreateWorkspace(ctx, client.WorkspaceParams{ID: "w", Name: "W"})
	srv.API.Drain() // every answer is now a 503 until the test ends
	c := client.New(srv.URL, testserver.AdminKey, client.WithRetries(2, time.Millisecond))
	_, err := c.Hold(ctx, "w", client.ChargeParams{Operation: "content_rewrite"})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || apiErr.Code != "unavailable" {
		t.Fatalf("draining server: %v", err)
	}
	bal, err := srv.Engine.Balance(ctx, "w")
	if err != nil || bal.Available != 250 {
		t.Fatalf("balance %+v %v", bal, err)
	}
}
