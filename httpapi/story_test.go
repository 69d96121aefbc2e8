package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
)

// Helpers of this file are prefixed "story" so they cannot clash with other
// test files of the package.

// storyChargeView is a charge as the API answers it.
type storyChargeView struct {
	credits.Charge
	Balance *credits.Balance `json:"balance"`
}

// storyLedgerPage is a ledger page as the API answers it.
type storyLedgerPage struct {
	Entries    []credits.Entry `json:"entries"`
	NextCursor *string         `json:"next_cursor"`
}

// storyLedger reads a workspace's whole ledger (up to 500 entries), newest
// first.
func (b *testBundle) storyLedger(t *testing.T, ws string) []credits.Entry {
	t.Helper()
	r := b.req(t, "GET", "/v1/workspaces/"+ws+"/ledger?limit=500", adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	var p storyLedgerPage
	r.decode(t, &p)
	if p.NextCursor != nil {
		t.Fatalf("ledger of %s has more than 500 entries", ws)
	}
	return p.Entries
}

// storyHold makes a charge through the API and expects 201.
func (b *testBundle) storyHold(t *testing.T, ws, key string, body map[string]any) storyChargeView {
	t.Helper()
	r := b.req(t, "POST", "/v1/workspaces/"+ws+"/charges", adminKey, body, "Idempotency-Key: "+key)
	wantStatus(t, r, http.StatusCreated)
	var c storyChargeView
	r.decode(t, &c)
	return c
}

// storyGetCharge reads a charge through the API.
func (b *testBundle) storyGetCharge(t *testing.T, id string) storyChargeView {
	t.Helper()
	r := b.req(t, "GET", "/v1/charges/"+id, adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	var c storyChargeView
	r.decode(t, &c)
	return c
}

// storyDo is a request that reports failures instead of stopping the test,
// for use from goroutines.
func (b *testBundle) storyDo(ctx context.Context, method, path, secret string, body any, headers ...string) (response, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return response{}, err
	}
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, bytes.NewReader(data))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := b.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: out}, nil
}

// storySetupServer is setup(t) that also returns the httpapi.Server, for
// tests that drain it.
func storySetupServer(t *testing.T) (*testBundle, *httpapi.Server) {
	t.Helper()
	b := setup(t, setupOpts{keepAlive: 50 * time.Millisecond})
	return b, b.api
}

// TestFreeWorkspaceStory is the seed's story through the API.
func TestFreeWorkspaceStory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "story", "")
	if bal := b.check(t, "story"); bal.Available != 250 || bal.Granted != 250 || bal.Plan != "free" || bal.MonthlyCredits != 250 {
		t.Fatalf("new free workspace: %+v", bal)
	}

	n := 0
	for _, w := range []struct {
		op    string
		count int
		cost  int64
	}{{"section_generation", 10, 10}, {"content_rewrite", 15, 1}, {"image_1k", 3, 30}} {
		for i := 0; i < w.count; i++ {
			n++
			c := b.storyHold(t, "story", fmt.Sprintf("story-%d", n), map[string]any{"operation": w.op})
			if c.Status != credits.StatusHeld || c.Cost != w.cost || c.Operation != w.op {
				t.Fatalf("hold %s: %+v", w.op, c.Charge)
			}
			r := b.req(t, "POST", "/v1/charges/"+c.ID+"/capture", adminKey, nil)
			wantStatus(t, r, http.StatusOK)
			var cc storyChargeView
			r.decode(t, &cc)
			if cc.Status != credits.StatusCaptured || cc.ID != c.ID {
				t.Fatalf("capture %s: %+v", c.ID, cc.Charge)
			}
		}
	}
	bal := b.check(t, "story")
	if bal.Available != 45 || bal.Used != 205 || bal.Held != 0 || bal.Granted != 250 {
		t.Fatalf("after the story: %+v", bal)
	}
	entries := b.storyLedger(t, "story")
	if len(entries) != 1+2*28 {
		t.Fatalf("ledger has %d entries, want 57", len(entries))
	}

	// image_2k does not fit: 402 with the upgrade, and nothing changes.
	r := b.req(t, "POST", "/v1/workspaces/story/charges", adminKey, map[string]any{"operation": "image_2k"}, "Idempotency-Key: story-2k")
	p := wantProblem(t, r, http.StatusPaymentRequired, "insufficient_credits", "")
	if p["balance"] != 45.0 || p["required"] != 60.0 || p["shortfall"] != 15.0 || p["plan"] != "free" {
		t.Fatalf("402 problem: %v", p)
	}
	up, ok := p["upgrade"].(map[string]any)
	if !ok || up["plan"] != "starter" || up["monthly_credits"] != 1000.0 || up["price_cents"] != 4900.0 {
		t.Fatalf("402 upgrade: %v", p["upgrade"])
	}
	if after := b.check(t, "story"); after != bal {
		t.Fatalf("a refused charge changed the balance: %+v, was %+v", after, bal)
	}
	if got := b.storyLedger(t, "story"); len(got) != len(entries) {
		t.Fatalf("a refused charge wrote to the ledger: %d entries, was %d", len(got), len(entries))
	}

	// Upgrade: the difference is granted at once.
	r = b.req(t, "PUT", "/v1/workspaces/story/plan", adminKey, map[string]any{"plan": "starter"})
	wantStatus(t, r, http.StatusOK)
	bal = b.check(t, "story")
	if bal.Available != 795 || bal.Granted != 1000 || bal.Used != 205 || bal.Plan != "starter" || bal.MonthlyCredits != 1000 {
		t.Fatalf("after the upgrade: %+v", bal)
	}

	// The next cycle: 795 expire, 1000 granted, at exactly the cycle start.
	start := bal.CycleEnd
	b.clock.Set(start)
	bal = b.check(t, "story")
	if bal.Granted != 1000 || bal.Available != 1000 || bal.Used != 0 || bal.Held != 0 || !bal.CycleStart.Equal(start) {
		t.Fatalf("next cycle: %+v", bal)
	}
	entries = b.storyLedger(t, "story")
	if len(entries) < 2 {
		t.Fatalf("ledger: %+v", entries)
	}
	g, x := entries[0], entries[1]
	if g.Type != credits.EntryGrant || g.Amount != 1000 || g.AvailableAfter != 1000 || !g.At.Equal(start) {
		t.Fatalf("newest entry %+v, want grant +1000 at %s", g, start)
	}
	if x.Type != credits.EntryExpire || x.Amount != -795 || x.AvailableAfter != 0 || !x.At.Equal(start) {
		t.Fatalf("entry before the grant %+v, want expire -795 at %s", x, start)
	}
}

// TestConcurrentHolds: 200 simultaneous holds of 30 on 250 credits: exactly 8
// succeed.
func TestConcurrentHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "race", "")
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := make(chan struct{})
	statuses := make([]int, n)
	errs := make([]error, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			r, err := b.storyDo(ctx, "POST", "/v1/workspaces/race/charges", adminKey,
				map[string]any{"operation": "image_1k"}, fmt.Sprintf("Idempotency-Key: race-%d", i))
			statuses[i], errs[i], bodies[i] = r.status, err, r.body
		}(i)
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for i := range statuses {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		count[statuses[i]]++
		if statuses[i] != http.StatusCreated && statuses[i] != http.StatusPaymentRequired {
			t.Errorf("request %d: status %d: %s", i, statuses[i], bodies[i])
		}
	}
	if count[http.StatusCreated] != 8 || count[http.StatusPaymentRequired] != 192 {
		t.Fatalf("statuses %v, want 8×201 and 192×402", count)
	}
	bal := b.check(t, "race")
	if bal.Held != 240 || bal.Available != 10 || bal.Used != 0 {
		t.Fatalf("balance %+v, want held 240, available 10", bal)
	}
}

// TestConcurrentRetriesChargeOnce: one request sent 50 times at once with one
// key is charged once.
func TestConcurrentRetriesChargeOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "retry", "")
	const n = 50
	body := map[string]any{"operation": "image_1k", "metadata": map[string]string{"page": "home"}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := make(chan struct{})
	res := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			res[i], errs[i] = b.storyDo(ctx, "POST", "/v1/workspaces/retry/charges", adminKey, body, "Idempotency-Key: same-key")
		}(i)
	}
	close(start)
	wg.Wait()
	id := ""
	created := 0
	for i, r := range res {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		switch r.status {
		case http.StatusCreated:
			created++
			var c storyChargeView
			r.decode(t, &c)
			if id == "" {
				id = c.ID
			} else if c.ID != id {
				t.Fatalf("request %d got charge %s, another got %s", i, c.ID, id)
			}
		case http.StatusConflict:
			wantProblem(t, r, http.StatusConflict, "request_in_progress", "")
		default:
			t.Fatalf("request %d: status %d: %s", i, r.status, r.body)
		}
	}
	if created == 0 {
		t.Fatal("no request got 201")
	}
	bal := b.check(t, "retry")
	if bal.Held != 30 || bal.Available != 220 {
		t.Fatalf("balance %+v, want one hold of 30", bal)
	}
	holds := 0
	for _, e := range b.storyLedger(t, "retry") {
		if e.Type == credits.EntryHold {
			holds++
		}
	}
	if holds != 1 {
		t.Fatalf("%d hold entries, want 1", holds)
	}

	// Sequential retries after success: the same answer, the same charge.
	for i := 0; i < 3; i++ {
		r := b.req(t, "POST", "/v1/workspaces/retry/charges", adminKey, body, "Idempotency-Key: same-key")
		wantStatus(t, r, http.StatusCreated)
		var c storyChargeView
		r.decode(t, &c)
		if c.ID != id || c.Status != credits.StatusHeld || c.Cost != 30 {
			t.Fatalf("retry %d: %+v, want charge %s", i, c.Charge, id)
		}
	}
	if bal2 := b.check(t, "retry"); bal2 != bal {
		t.Fatalf("retries changed the balance: %+v, was %+v", bal2, bal)
	}
}

// TestHoldExpiry: holds past their expiry come back on read, by the sweeper,
// and across a cycle reset.
func TestHoldExpiry(t *testing.T) {
	t.Parallel()

	t.Run("lazy on read", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createWorkspace(t, "exp", "")
		c := b.storyHold(t, "exp", "k1", map[string]any{"operation": "image_1k", "hold_seconds": 60})
		if !c.ExpiresAt.Equal(epoch.Add(60 * time.Second)) {
			t.Fatalf("expires_at %s, want %s", c.ExpiresAt, epoch.Add(60*time.Second))
		}
		if bal := b.check(t, "exp"); bal.Available != 220 || bal.Held != 30 {
			t.Fatalf("while held: %+v", bal)
		}
		b.clock.Advance(61 * time.Second)
		if bal := b.check(t, "exp"); bal.Available != 250 || bal.Held != 0 || bal.Used != 0 {
			t.Fatalf("after expiry: %+v", bal)
		}
		if got := b.storyGetCharge(t, c.ID); got.Status != credits.StatusExpired {
			t.Fatalf("charge status %s, want expired", got.Status)
		}
		wantProblem(t, b.req(t, "POST", "/v1/charges/"+c.ID+"/capture", adminKey, nil), http.StatusConflict, "charge_not_held", "")
		if e := b.storyLedger(t, "exp")[0]; e.Type != credits.EntryRelease || e.Amount != 30 || e.ChargeID != c.ID || !e.At.Equal(c.ExpiresAt) {
			t.Fatalf("newest entry %+v, want release +30 at %s", e, c.ExpiresAt)
		}
	})

	t.Run("charge read first", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createWorkspace(t, "exp2", "")
		c := b.storyHold(t, "exp2", "k1", map[string]any{"operation": "image_1k", "hold_seconds": 60})
		b.clock.Advance(61 * time.Second)
		if got := b.storyGetCharge(t, c.ID); got.Status != credits.StatusExpired || got.Balance == nil || got.Balance.Available != 250 {
			t.Fatalf("charge %+v balance %+v, want expired with 250 back", got.Charge, got.Balance)
		}
		b.check(t, "exp2")
	})

	t.Run("sweeper", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createWorkspace(t, "sweep", "")
		c := b.storyHold(t, "sweep", "k1", map[string]any{"operation": "image_1k", "hold_seconds": 60})
		b.clock.Advance(61 * time.Second)
		ctx := context.Background()
		n, err := b.engine.Sweep(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Sweep: %d, %v; want 1 workspace", n, err)
		}
		ch, err := b.store.Charge(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Status != credits.StatusExpired {
			t.Fatalf("stored charge status %s, want expired", ch.Status)
		}
		a, err := b.store.Account(ctx, "sweep")
		if err != nil {
			t.Fatal(err)
		}
		if a.Cycle.Available != 250 || a.Cycle.Held != 0 {
			t.Fatalf("stored cycle %+v, want 250 available, 0 held", a.Cycle)
		}
		if err := ledger.Check(ctx, b.store); err != nil {
			t.Fatal(err)
		}
		if n, err := b.engine.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("second Sweep: %d, %v; want 0", n, err)
		}
	})

	t.Run("across a reset", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createWorkspace(t, "wa", "") // a hold that expires after the reset
		b.createWorkspace(t, "wb", "") // a hold captured after the reset
		b.createWorkspace(t, "wc", "") // the reset read first, then a capture and a release
		end := b.balance(t, "wa").CycleEnd
		b.clock.Set(end.Add(-30 * time.Minute))
		ca := b.storyHold(t, "wa", "a", map[string]any{"operation": "image_1k", "hold_seconds": 3600})
		cb := b.storyHold(t, "wb", "b", map[string]any{"operation": "section_generation", "hold_seconds": 3600})
		cc := b.storyHold(t, "wb", "c", map[string]any{"operation": "content_rewrite", "hold_seconds": 3600})
		cd := b.storyHold(t, "wc", "d", map[string]any{"operation": "image_1k", "hold_seconds": 3600})
		ce := b.storyHold(t, "wc", "e", map[string]any{"operation": "section_generation", "hold_seconds": 3600})

		// After the reset, before the holds expire: capture b.
		b.clock.Set(end.Add(10 * time.Minute))
		r := b.req(t, "POST", "/v1/charges/"+cb.ID+"/capture", adminKey, nil)
		wantStatus(t, r, http.StatusOK)
		var got storyChargeView
		r.decode(t, &got)
		if got.Status != credits.StatusCaptured {
			t.Fatalf("capture after reset: %+v", got.Charge)
		}
		bal := b.check(t, "wb")
		if bal.Available != 250 || bal.Granted != 250 || bal.Used != 0 || bal.Held != 0 || !bal.CycleStart.Equal(end) {
			t.Fatalf("wb after capture in the new cycle: %+v (the capture must count in the old cycle)", bal)
		}
		if got.Balance == nil || *got.Balance != bal {
			t.Fatalf("capture answered balance %+v, want %+v", got.Balance, bal)
		}

		// wc: the reset is applied by a read first, then one old hold is
		// captured and one released.
		if bal := b.check(t, "wc"); bal.Available != 250 || bal.Held != 0 || bal.Used != 0 {
			t.Fatalf("wc after the reset: %+v", bal)
		}
		wantStatus(t, b.req(t, "POST", "/v1/charges/"+cd.ID+"/capture", adminKey, nil), http.StatusOK)
		r = b.req(t, "POST", "/v1/charges/"+ce.ID+"/release", adminKey, nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &got)
		if got.Status != credits.StatusReleased {
			t.Fatalf("release after reset: %+v", got.Charge)
		}
		if bal := b.check(t, "wc"); bal.Available != 250 || bal.Granted != 250 || bal.Held != 0 || bal.Used != 0 {
			t.Fatalf("wc after capture and release of old holds: %+v", bal)
		}
		if e := b.storyLedger(t, "wc")[0]; e.Type != credits.EntryExpire || e.Amount != 0 || e.ChargeID != ce.ID {
			t.Fatalf("wc newest entry %+v, want expire 0 of the released old hold", e)
		}

		// Past the holds' expiry: their credits do not enter the new cycle.
		b.clock.Set(end.Add(2 * time.Hour))
		for _, w := range []struct {
			ws string
			ch storyChargeView
		}{{"wa", ca}, {"wb", cc}} {
			bal := b.check(t, w.ws)
			if bal.Available != 250 || bal.Granted != 250 || bal.Held != 0 || bal.Used != 0 {
				t.Fatalf("%s in the new cycle: %+v, want 250 available", w.ws, bal)
			}
			if c := b.storyGetCharge(t, w.ch.ID); c.Status != credits.StatusExpired {
				t.Fatalf("%s: charge status %s, want expired", w.ws, c.Status)
			}
			wantProblem(t, b.req(t, "POST", "/v1/charges/"+w.ch.ID+"/capture", adminKey, nil), http.StatusConflict, "charge_not_held", "")
			e := b.storyLedger(t, w.ws)[0]
			if e.Type != credits.EntryExpire || e.Amount != 0 || e.ChargeID != w.ch.ID || e.AvailableAfter != 250 || !e.At.Equal(w.ch.ExpiresAt) {
				t.Fatalf("%s newest entry %+v, want expire 0 of %s at %s", w.ws, e, w.ch.ID, w.ch.ExpiresAt)
			}
		}
		// wa's ledger: ... hold -30, expire -220 and grant 250 at the reset,
		// expire 0 of the hold.
		es := b.storyLedger(t, "wa")
		if len(es) != 5 {
			t.Fatalf("wa ledger %+v, want 5 entries", es)
		}
		if es[1].Type != credits.EntryGrant || es[1].Amount != 250 || !es[1].At.Equal(end) ||
			es[2].Type != credits.EntryExpire || es[2].Amount != -220 || !es[2].At.Equal(end) ||
			es[3].Type != credits.EntryHold || es[3].Amount != -30 {
			t.Fatalf("wa ledger %+v", es)
		}
		// wb's capture entry is 0 and names the charge.
		found := false
		for _, e := range b.storyLedger(t, "wb") {
			if e.Type == credits.EntryCapture && e.ChargeID == cb.ID && e.Amount == 0 {
				found = true
			}
		}
		if !found {
			t.Fatal("wb ledger has no capture 0 of the captured charge")
		}
	})
}

// TestCyclesThroughAPI: missed resets are applied with their own times,
// clamped to the months' ends.
func TestCyclesThroughAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	anchor := time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)
	b.clock.Set(anchor)
	r := b.req(t, "POST", "/v1/workspaces", adminKey, map[string]any{"id": "cyc", "name": "Cycles", "cycle_anchor": "2024-01-31T10:00:00Z"})
	wantStatus(t, r, http.StatusCreated)
	var ws credits.Workspace
	r.decode(t, &ws)
	if !ws.CycleAnchor.Equal(anchor) {
		t.Fatalf("cycle_anchor %s, want %s", ws.CycleAnchor, anchor)
	}
	b.clock.Set(time.Date(2024, 5, 10, 0, 0, 0, 0, time.UTC))
	bal := b.check(t, "cyc")
	if want := time.Date(2024, 4, 30, 10, 0, 0, 0, time.UTC); !bal.CycleStart.Equal(want) {
		t.Fatalf("cycle_start %s, want %s", bal.CycleStart, want)
	}
	if want := time.Date(2024, 5, 31, 10, 0, 0, 0, time.UTC); !bal.CycleEnd.Equal(want) {
		t.Fatalf("cycle_end %s, want %s", bal.CycleEnd, want)
	}
	if bal.Available != 250 || bal.Granted != 250 {
		t.Fatalf("balance %+v", bal)
	}
	// Oldest first.
	es := b.storyLedger(t, "cyc")
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	grants := []time.Time{
		anchor,
		time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 31, 10, 0, 0, 0, time.UTC),
		time.Date(2024, 4, 30, 10, 0, 0, 0, time.UTC),
	}
	if len(es) != 7 {
		t.Fatalf("ledger %+v, want 4 grants and 3 expires", es)
	}
	if es[0].Type != credits.EntryGrant || es[0].Amount != 250 || !es[0].At.Equal(grants[0]) {
		t.Fatalf("first entry %+v, want grant 250 at %s", es[0], grants[0])
	}
	for k := 1; k < len(grants); k++ {
		x, g := es[2*k-1], es[2*k]
		if x.Type != credits.EntryExpire || x.Amount != -250 || !x.At.Equal(grants[k]) {
			t.Fatalf("entry %d %+v, want expire -250 at %s", 2*k-1, x, grants[k])
		}
		if g.Type != credits.EntryGrant || g.Amount != 250 || !g.At.Equal(grants[k]) {
			t.Fatalf("entry %d %+v, want grant 250 at %s", 2*k, g, grants[k])
		}
	}
}

// storySSE reads a server-sent event stream line by line in a goroutine.
type storySSE struct {
	lines chan string
	err   chan error
}

func storyReadSSE(body io.Reader) *storySSE {
	s := &storySSE{lines: make(chan string, 1024), err: make(chan error, 1)}
	go func() {
		br := bufio.NewReader(body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				s.err <- err
				close(s.lines)
				return
			}
			s.lines <- strings.TrimRight(line, "\r\n")
		}
	}()
	return s
}

// next returns the next event's name and data, skipping comments; comments
// counts the comment lines skipped.
func (s *storySSE) next(t *testing.T, timeout time.Duration) (event, data string, comments int) {
	t.Helper()
	deadline := time.After(timeout)
	var dataLines []string
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("stream ended: %v", <-s.err)
			}
			switch {
			case line == "":
				if event != "" || len(dataLines) > 0 {
					return event, strings.Join(dataLines, "\n"), comments
				}
			case strings.HasPrefix(line, ":"):
				comments++
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				dataLines = append(dataLines, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		case <-deadline:
			t.Fatalf("no event within %s", timeout)
		}
	}
}

// nextBalance reads the next event and expects a balance.
func (s *storySSE) nextBalance(t *testing.T) credits.Balance {
	t.Helper()
	ev, data, _ := s.next(t, 5*time.Second)
	if ev != "balance" {
		t.Fatalf("event %q, want balance", ev)
	}
	var bal credits.Balance
	if err := json.Unmarshal([]byte(data), &bal); err != nil {
		t.Fatalf("event data %q: %v", data, err)
	}
	return bal
}

// storyOpenStream opens a balance stream with a session token in the query.
func (b *testBundle) storyOpenStream(t *testing.T, ctx context.Context, ws, token string) (*http.Response, *storySSE) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", b.url+"/v1/workspaces/"+ws+"/balance/stream?access_token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(res.Body)
		t.Fatalf("stream: status %d: %s", res.StatusCode, data)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q, want text/event-stream", ct)
	}
	return res, storyReadSSE(res.Body)
}

// storyWaitSubscribers polls until a workspace has n stream subscribers.
func (b *testBundle) storyWaitSubscribers(t *testing.T, ws string, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for b.engine.Subscribers(ws) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d subscribers, want %d", ws, b.engine.Subscribers(ws), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBalanceStream: the SSE stream with a session token in the query.
func TestBalanceStream(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{keepAlive: 50 * time.Millisecond})
	b.createWorkspace(t, "live", "")
	b.createWorkspace(t, "other", "")
	tok := b.session(t, "live", "m1")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sctx, closeStream := context.WithCancel(ctx)
	defer closeStream()
	_, sse := b.storyOpenStream(t, sctx, "live", tok)

	bal := sse.nextBalance(t)
	if bal.WorkspaceID != "live" || bal.Available != 250 || bal.Granted != 250 || bal.Plan != "free" {
		t.Fatalf("balance at connect: %+v", bal)
	}
	if n := b.engine.Subscribers("live"); n != 1 {
		t.Fatalf("%d subscribers, want 1", n)
	}

	// Idle: a comment line arrives.
	select {
	case line := <-sse.lines:
		if !strings.HasPrefix(line, ":") {
			t.Fatalf("idle stream sent %q, want a comment line", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no keep-alive comment on an idle stream")
	}

	// A charge from another credential.
	c := b.storyHold(t, "live", "s1", map[string]any{"operation": "image_1k"})
	if bal = sse.nextBalance(t); bal.Available != 220 || bal.Held != 30 {
		t.Fatalf("event after the hold: %+v", bal)
	}
	wantStatus(t, b.req(t, "POST", "/v1/charges/"+c.ID+"/capture", adminKey, nil), http.StatusOK)
	if bal = sse.nextBalance(t); bal.Available != 220 || bal.Held != 0 || bal.Used != 30 {
		t.Fatalf("event after the capture: %+v", bal)
	}
	wantStatus(t, b.req(t, "PUT", "/v1/workspaces/live/plan", adminKey, map[string]any{"plan": "starter"}), http.StatusOK)
	if bal = sse.nextBalance(t); bal.Available != 970 || bal.Granted != 1000 || bal.Plan != "starter" {
		t.Fatalf("event after the upgrade: %+v", bal)
	}
	// A change to another workspace sends nothing here; the next event is
	// this workspace's.
	b.storyHold(t, "other", "o1", map[string]any{"operation": "content_rewrite"})
	b.storyHold(t, "live", "s2", map[string]any{"operation": "content_rewrite"})
	if bal = sse.nextBalance(t); bal.WorkspaceID != "live" || bal.Available != 969 {
		t.Fatalf("event after the second hold: %+v", bal)
	}

	// Refusals.
	wantProblem(t, b.req(t, "GET", "/v1/workspaces/live/balance/stream?access_token=not-a-token", "", nil), http.StatusUnauthorized, "unauthorized", "")
	wantProblem(t, b.req(t, "GET", "/v1/workspaces/live/balance/stream", "", nil), http.StatusUnauthorized, "unauthorized", "")
	otherTok := b.session(t, "other", "m2")
	wantProblem(t, b.req(t, "GET", "/v1/workspaces/live/balance/stream?access_token="+otherTok, "", nil), http.StatusForbidden, "forbidden", "")

	// Closing the stream drops the subscription.
	closeStream()
	b.storyWaitSubscribers(t, "live", 0)
}

// TestDrain: once draining, requests get 503 unavailable and streams end.
func TestDrain(t *testing.T) {
	t.Parallel()
	b, api := storySetupServer(t)
	b.createWorkspace(t, "d", "")
	tok := b.session(t, "d", "m")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, sse := b.storyOpenStream(t, ctx, "d", tok)
	sse.nextBalance(t)

	api.Drain()

	// The open stream ends.
	deadline := time.After(5 * time.Second)
wait:
	for {
		select {
		case _, ok := <-sse.lines:
			if !ok {
				break wait
			}
		case <-deadline:
			t.Fatal("the balance stream did not end on Drain")
		}
	}
	b.storyWaitSubscribers(t, "d", 0)

	for _, rq := range []struct {
		method, path string
		body         any
		headers      []string
	}{
		{"GET", "/v1/catalog", nil, nil},
		{"GET", "/v1/workspaces/d/balance", nil, nil},
		{"POST", "/v1/workspaces/d/charges", map[string]any{"operation": "image_1k"}, []string{"Idempotency-Key: drain"}},
	} {
		r := b.req(t, rq.method, rq.path, adminKey, rq.body, rq.headers...)
		wantProblem(t, r, http.StatusServiceUnavailable, "unavailable", "")
	}
	// Nothing was charged while draining.
	a, err := b.store.Account(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if a.Cycle.Available != 250 || a.Cycle.Held != 0 {
		t.Fatalf("stored cycle %+v after a charge while draining", a.Cycle)
	}
}
