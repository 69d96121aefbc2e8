package httpapi_test

// Tests of the public contract (/work/shared/contract/http-api.md) over the
// real listener: every endpoint, field, status and error code of the
// sections Running it, Auth, Catalog, Estimate, Workspaces and balance,
// Charges, Plans and Ledger.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------- Running it

func TestContractHealthz(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, secret := range []string{"", "wrong", adminKey} {
		r := b.req(t, "GET", "/healthz", secret, nil)
		wantStatus(t, r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
		if got := r.json(t); got["status"] != "ok" {
			t.Fatalf("healthz %v", got)
		}
	}
}

// A request that arrives while the server drains gets 503 unavailable, and
// nothing is charged.
func TestContractDraining(t *testing.T) {
	t.Parallel()
	b, api := newBundle(t)
	b.createWorkspace(t, "w", "")
	before := b.snap(t, "w")
	api.Drain()
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/catalog"},
		{"GET", "/v1/workspaces/w/balance"},
		{"POST", "/v1/workspaces/w/charges"},
	} {
		r := b.req(t, tc.method, tc.path, adminKey, map[string]any{"operation": "image_1k"}, "Idempotency-Key: drain")
		wantProblem(t, r, http.StatusServiceUnavailable, "unavailable", "")
	}
	bal, err := b.engine.Balance(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	if bal != before.bal {
		t.Fatalf("balance changed while draining: %+v, was %+v", bal, before.bal)
	}
}

// While the store cannot be reached, requests that need it get 503
// unavailable.
func TestContractStoreDown(t *testing.T) {
	t.Parallel()
	b, _ := newBundle(t)
	b.createWorkspace(t, "w", "")
	b.store.Close()
	wantProblem(t, b.req(t, "GET", "/healthz", "", nil), http.StatusServiceUnavailable, "unavailable", "")
	wantProblem(t, b.req(t, "GET", "/v1/workspaces/w/balance", adminKey, nil), http.StatusServiceUnavailable, "unavailable", "")
	r := b.req(t, "POST", "/v1/workspaces/w/charges", adminKey, map[string]any{"operation": "image_1k"}, "Idempotency-Key: down")
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable", "")
}

// ------------------------------------------------------------------- Catalog

func TestContractCatalog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.req(t, "GET", "/v1/catalog", "", nil)
	wantStatus(t, r, http.StatusOK)
	var cat struct {
		Operations []map[string]any `json:"operations"`
		Plans      []map[string]any `json:"plans"`
	}
	r.decode(t, &cat)
	if got := keysOf(r.json(t)); !slices.Equal(got, []string{"operations", "plans"}) {
		t.Fatalf("catalog keys %v", got)
	}
	ops := []struct {
		id, name string
		cost     float64
	}{
		{"content_rewrite", "Content rewriting", 1},
		{"section_generation", "Section content generation", 10},
		{"image_1k", "Image generation (1K, 1024x1024)", 30},
		{"image_2k", "Image generation (2K, 2048x2048)", 60},
		{"avatar_selection", "Avatar selection from the built-in library", 0},
	}
	if len(cat.Operations) != len(ops) {
		t.Fatalf("%d operations, want %d: %v", len(cat.Operations), len(ops), cat.Operations)
	}
	for i, want := range ops {
		got := cat.Operations[i]
		if k := keysOf(got); !slices.Equal(k, []string{"cost", "description", "id", "name"}) {
			t.Fatalf("operation %d keys %v", i, k)
		}
		if got["id"] != want.id || got["name"] != want.name || got["cost"] != want.cost {
			t.Fatalf("operation %d is %v, want %+v", i, got, want)
		}
		if _, ok := got["description"].(string); !ok {
			t.Fatalf("operation %d description %v", i, got["description"])
		}
	}
	plans := []struct {
		id, name     string
		credits, usd float64
	}{
		{"free", "Free", 250, 0},
		{"starter", "Starter", 1000, 4900},
		{"pro", "Pro", 5000, 7900},
	}
	if len(cat.Plans) != len(plans) {
		t.Fatalf("%d plans, want %d", len(cat.Plans), len(plans))
	}
	for i, want := range plans {
		got := cat.Plans[i]
		if k := keysOf(got); !slices.Equal(k, []string{"currency", "id", "monthly_credits", "name", "price_cents"}) {
			t.Fatalf("plan %d keys %v", i, k)
		}
		if got["id"] != want.id || got["name"] != want.name || got["monthly_credits"] != want.credits ||
			got["price_cents"] != want.usd || got["currency"] != "usd" {
			t.Fatalf("plan %d is %v, want %+v", i, got, want)
		}
	}
}

// ------------------------------------------------------------------ Estimate

func TestContractEstimate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type line struct {
		op                    string
		count, cost, subtotal float64
	}
	tests := []struct {
		name     string
		items    [][2]any
		total    float64
		lines    []line
		fits     []bool // free, starter, pro
		smallest any
	}{
		{
			name:  "seed free",
			items: [][2]any{{"section_generation", 10}, {"content_rewrite", 15}, {"image_1k", 3}},
			total: 205,
			lines: []line{{"section_generation", 10, 10, 100}, {"content_rewrite", 15, 1, 15}, {"image_1k", 3, 30, 90}},
			fits:  []bool{true, true, true}, smallest: "free",
		},
		{
			name:  "seed starter",
			items: [][2]any{{"section_generation", 30}, {"content_rewrite", 50}, {"image_1k", 10}, {"image_2k", 2}},
			total: 770,
			lines: []line{{"section_generation", 30, 10, 300}, {"content_rewrite", 50, 1, 50}, {"image_1k", 10, 30, 300}, {"image_2k", 2, 60, 120}},
			fits:  []bool{false, true, true}, smallest: "starter",
		},
		{
			name:  "exactly a plan",
			items: [][2]any{{"content_rewrite", 250}},
			total: 250,
			lines: []line{{"content_rewrite", 250, 1, 250}},
			fits:  []bool{true, true, true}, smallest: "free",
		},
		{
			name:  "beyond every plan",
			items: [][2]any{{"image_2k", 100}, {"avatar_selection", 7}},
			total: 6000,
			lines: []line{{"image_2k", 100, 60, 6000}, {"avatar_selection", 7, 0, 0}},
			fits:  []bool{false, false, false}, smallest: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var items []map[string]any
			for _, it := range tc.items {
				items = append(items, map[string]any{"operation": it[0], "count": it[1]})
			}
			// No auth needed; a bad secret does not matter either.
			for _, secret := range []string{"", "not-a-key"} {
				r := b.req(t, "POST", "/v1/estimate", secret, map[string]any{"items": items})
				wantStatus(t, r, http.StatusOK)
				got := r.json(t)
				hasKeys(t, "estimate", got, "total", "breakdown", "plans", "smallest_plan")
				if got["total"] != tc.total {
					t.Fatalf("total %v, want %v", got["total"], tc.total)
				}
				if got["smallest_plan"] != tc.smallest {
					t.Fatalf("smallest_plan %v, want %v", got["smallest_plan"], tc.smallest)
				}
				bd := got["breakdown"].([]any)
				if len(bd) != len(tc.lines) {
					t.Fatalf("breakdown %v", bd)
				}
				for i, l := range tc.lines {
					m := bd[i].(map[string]any)
					hasKeys(t, "breakdown line", m, "operation", "count", "cost", "subtotal")
					if m["operation"] != l.op || m["count"] != l.count || m["cost"] != l.cost || m["subtotal"] != l.subtotal {
						t.Fatalf("breakdown[%d] %v, want %+v", i, m, l)
					}
				}
				plans := got["plans"].([]any)
				ids := []string{"free", "starter", "pro"}
				credits := []float64{250, 1000, 5000}
				if len(plans) != 3 {
					t.Fatalf("plans %v", plans)
				}
				for i, p := range plans {
					m := p.(map[string]any)
					hasKeys(t, "plan fit", m, "id", "monthly_credits", "fits")
					if m["id"] != ids[i] || m["monthly_credits"] != credits[i] || m["fits"] != tc.fits[i] {
						t.Fatalf("plans[%d] %v, want %s fits=%v", i, m, ids[i], tc.fits[i])
					}
				}
			}
		})
	}
	bad := []struct {
		name, body, field string
	}{
		{"no items", `{"items":[]}`, "items"},
		{"empty body", ``, "body"},
		{"malformed", `{"items":[`, "body"},
		{"unknown field", `{"items":[{"operation":"image_1k","count":1}],"x":1}`, "x"},
		{"unknown operation", `{"items":[{"operation":"video","count":1}]}`, "items[0].operation"},
		{"negative count", `{"items":[{"operation":"image_1k","count":1},{"operation":"image_1k","count":-1}]}`, "items[1].count"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantProblem(t, b.req(t, "POST", "/v1/estimate", "", tc.body), http.StatusBadRequest, "invalid_request", tc.field)
		})
	}
}

// -------------------------------------------------------- Workspaces, balance

func TestContractWorkspaces(t *testing.T) {
	t.Parallel()
	b := setup(t)
	anchor := time.Date(2024, 12, 31, 8, 15, 0, 0, time.UTC)
	tests := []struct {
		name       string
		body       map[string]any
		wantPlan   string
		wantAnchor time.Time
		credits    float64
		cycleStart time.Time
		cycleEnd   time.Time
	}{
		{"defaults", map[string]any{"id": "acme", "name": "Acme"}, "free", epoch, 250, epoch, epoch.AddDate(0, 1, 0)},
		{"plan and anchor", map[string]any{"id": "big", "name": "Big", "plan": "starter", "cycle_anchor": anchor.Format(time.RFC3339)},
			"starter", anchor, 1000, time.Date(2024, 12, 31, 8, 15, 0, 0, time.UTC), time.Date(2025, 1, 31, 8, 15, 0, 0, time.UTC)},
		{"pro", map[string]any{"id": "p-1_X", "name": "Pro", "plan": "pro"}, "pro", epoch, 5000, epoch, epoch.AddDate(0, 1, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := tc.body["id"].(string)
			r := b.req(t, "POST", "/v1/workspaces", adminKey, tc.body)
			wantStatus(t, r, http.StatusCreated)
			ws := r.json(t)
			hasKeys(t, "workspace", ws, "id", "name", "plan", "pending_plan", "cycle_anchor", "created_at")
			if ws["id"] != id || ws["name"] != tc.body["name"] || ws["plan"] != tc.wantPlan || ws["pending_plan"] != nil {
				t.Fatalf("workspace %v", ws)
			}
			wantTime(t, "cycle_anchor", ws["cycle_anchor"], tc.wantAnchor)
			wantTime(t, "created_at", ws["created_at"], epoch)

			g := b.req(t, "GET", "/v1/workspaces/"+id, adminKey, nil)
			wantStatus(t, g, http.StatusOK)
			if got := g.json(t); !reflect.DeepEqual(got, ws) {
				t.Fatalf("GET %v, POST answered %v", got, ws)
			}

			dup := b.req(t, "POST", "/v1/workspaces", adminKey, tc.body)
			wantProblem(t, dup, http.StatusConflict, "conflict", "")
			dup = b.req(t, "POST", "/v1/workspaces", adminKey, map[string]any{"id": id, "name": "Other", "plan": "pro"})
			wantProblem(t, dup, http.StatusConflict, "conflict", "")
			if got := b.req(t, "GET", "/v1/workspaces/"+id, adminKey, nil).json(t); !reflect.DeepEqual(got, ws) {
				t.Fatalf("a duplicate changed the workspace: %v, was %v", got, ws)
			}

			br := b.req(t, "GET", "/v1/workspaces/"+id+"/balance", adminKey, nil)
			wantStatus(t, br, http.StatusOK)
			bal := br.json(t)
			hasKeys(t, "balance", bal, "workspace_id", "plan", "monthly_credits", "granted", "available", "held", "used", "cycle_start", "cycle_end")
			if bal["workspace_id"] != id || bal["plan"] != tc.wantPlan || bal["monthly_credits"] != tc.credits ||
				bal["granted"] != tc.credits || bal["available"] != tc.credits || bal["held"] != 0.0 || bal["used"] != 0.0 {
				t.Fatalf("balance %v", bal)
			}
			wantTime(t, "cycle_start", bal["cycle_start"], tc.cycleStart)
			wantTime(t, "cycle_end", bal["cycle_end"], tc.cycleEnd)
			b.check(t, id)
		})
	}
	t.Run("generated id", func(t *testing.T) {
		t.Parallel()
		r := b.req(t, "POST", "/v1/workspaces", adminKey, map[string]any{"name": "No id"})
		wantStatus(t, r, http.StatusCreated)
		id, _ := r.json(t)["id"].(string)
		if id == "" {
			t.Fatalf("no id: %s", r.body)
		}
		wantStatus(t, b.req(t, "GET", "/v1/workspaces/"+url.PathEscape(id), adminKey, nil), http.StatusOK)
	})
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/v1/workspaces/nope", "/v1/workspaces/nope/balance", "/v1/workspaces/nope/ledger"} {
			wantProblem(t, b.req(t, "GET", p, adminKey, nil), http.StatusNotFound, "not_found", "")
		}
	})
	bad := []struct{ name, body, field string }{
		{"unknown plan", `{"id":"x1","name":"X","plan":"gold"}`, "plan"},
		{"no name", `{"id":"x2"}`, "name"},
		{"bad anchor", `{"id":"x3","name":"X","cycle_anchor":"yesterday"}`, "cycle_anchor"},
		{"bad id", `{"id":"a b","name":"X"}`, "id"},
		{"unknown field", `{"id":"x4","name":"X","owner":"me"}`, "owner"},
		{"wrong type", `{"id":"x5","name":7}`, "name"},
		{"malformed", `{"id":`, "body"},
		{"empty", ``, "body"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantProblem(t, b.req(t, "POST", "/v1/workspaces", adminKey, tc.body), http.StatusBadRequest, "invalid_request", tc.field)
		})
	}
}

// The balance stream sends the balance at connect and after every change,
// keep-alive comments when idle, and takes a session token as ?access_token=.
func TestContractBalanceStream(t *testing.T) {
	t.Parallel()
	b, _ := newBundle(t) // keep-alive every 50 ms
	b.createWorkspace(t, "w", "")
	b.createWorkspace(t, "w2", "")
	tok := b.session(t, "w", "m1")
	other := b.session(t, "w2", "m2")

	for _, tc := range []struct{ name, path, header string }{
		{"admin header", "/v1/workspaces/w/balance/stream", "Bearer " + adminKey},
		{"session header", "/v1/workspaces/w/balance/stream", "Bearer " + tok},
		{"access_token", "/v1/workspaces/w/balance/stream?access_token=" + url.QueryEscape(tok), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := b.stream(t, tc.path, tc.header)
			wantStatus(t, s.response, http.StatusOK)
			if ct := s.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("content type %q", ct)
			}
			first := streamBalance(t, s)
			before := b.balance(t, "w")
			if first["available"] != float64(before.Available) || first["workspace_id"] != "w" {
				t.Fatalf("first event %v, balance %+v", first, before)
			}
			r := b.req(t, "POST", "/v1/workspaces/w/charges", adminKey, map[string]any{"operation": "content_rewrite", "capture": true}, "Idempotency-Key: stream-"+tc.name)
			wantStatus(t, r, http.StatusCreated)
			after := streamBalance(t, s)
			if after["available"] != float64(before.Available-1) || after["used"] != float64(before.Used+1) {
				t.Fatalf("event after a charge %v, before %+v", after, before)
			}
		})
	}
	t.Run("keep-alive", func(t *testing.T) {
		s := b.stream(t, "/v1/workspaces/w/balance/stream", "Bearer "+adminKey)
		streamBalance(t, s)
		lines := s.next(t)
		if !strings.HasPrefix(lines[0], ":") {
			t.Fatalf("idle stream sent %q, want a comment", lines)
		}
	})
	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{"no token", "/v1/workspaces/w/balance/stream", 401, "unauthorized"},
		{"bad token", "/v1/workspaces/w/balance/stream?access_token=crs_x.y", 401, "unauthorized"},
		{"other workspace token", "/v1/workspaces/w/balance/stream?access_token=" + url.QueryEscape(other), 403, "forbidden"},
		{"unknown workspace", "/v1/workspaces/nope/balance/stream?access_token=" + adminKey, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := b.stream(t, tc.path, "")
			wantProblem(t, s.response, tc.status, tc.code, "")
		})
	}
}

// streamBalance reads the next balance event.
func streamBalance(t *testing.T, s streamResp) map[string]any {
	t.Helper()
	for {
		lines := s.next(t)
		if strings.HasPrefix(lines[0], ":") {
			continue // keep-alive
		}
		if lines[0] != "event: balance" || len(lines) < 2 || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("event %q", lines)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &m); err != nil {
			t.Fatal(err)
		}
		hasKeys(t, "streamed balance", m, "workspace_id", "plan", "monthly_credits", "granted", "available", "held", "used", "cycle_start", "cycle_end")
		return m
	}
}

// ------------------------------------------------------------------- Charges

// charge posts a charge and asserts its status.
func (b *testBundle) charge(t *testing.T, ws, key string, body any, status int, secret ...string) response {
	t.Helper()
	s := adminKey
	if len(secret) > 0 {
		s = secret[0]
	}
	r := b.req(t, "POST", "/v1/workspaces/"+ws+"/charges", s, body, "Idempotency-Key: "+key)
	if status != 0 {
		wantStatus(t, r, status)
	}
	return r
}

func TestContractChargeObject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name      string
		body      map[string]any
		op        string
		quantity  float64
		cost      float64
		status    string
		member    any
		expiresIn time.Duration
		held      float64
		used      float64
	}{
		{"defaults", map[string]any{"operation": "image_1k"}, "image_1k", 1, 30, "held", nil, 600 * time.Second, 30, 0},
		{"all fields", map[string]any{"operation": "content_rewrite", "quantity": 7, "member_id": "m-1", "hold_seconds": 60, "metadata": map[string]string{"page": "home"}},
			"content_rewrite", 7, 7, "held", "m-1", 60 * time.Second, 7, 0},
		{"capture", map[string]any{"operation": "section_generation", "quantity": 2, "capture": true}, "section_generation", 2, 20, "captured", nil, 600 * time.Second, 0, 20},
		{"max hold", map[string]any{"operation": "image_2k", "hold_seconds": 3600}, "image_2k", 1, 60, "held", nil, time.Hour, 60, 0},
		{"min hold", map[string]any{"operation": "image_2k", "hold_seconds": 1}, "image_2k", 1, 60, "held", nil, time.Second, 60, 0},
		{"free operation", map[string]any{"operation": "avatar_selection", "quantity": 3}, "avatar_selection", 3, 0, "held", nil, 600 * time.Second, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := "w-" + strings.ReplaceAll(tc.name, " ", "-")
			b.createWorkspace(t, ws, "")
			r := b.charge(t, ws, "k1", tc.body, http.StatusCreated)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			c := r.json(t)
			hasKeys(t, "charge", c, "id", "workspace_id", "operation", "quantity", "cost", "status", "member_id", "created_at", "expires_at", "balance")
			if id, _ := c["id"].(string); id == "" {
				t.Fatalf("charge id %v", c["id"])
			}
			if c["workspace_id"] != ws || c["operation"] != tc.op || c["quantity"] != tc.quantity || c["cost"] != tc.cost ||
				c["status"] != tc.status || c["member_id"] != tc.member {
				t.Fatalf("charge %v", c)
			}
			wantTime(t, "created_at", c["created_at"], epoch)
			wantTime(t, "expires_at", c["expires_at"], epoch.Add(tc.expiresIn))
			bal := c["balance"].(map[string]any)
			hasKeys(t, "charge balance", bal, "workspace_id", "plan", "monthly_credits", "granted", "available", "held", "used", "cycle_start", "cycle_end")
			if bal["available"] != 250-tc.cost || bal["held"] != tc.held || bal["used"] != tc.used || bal["granted"] != 250.0 {
				t.Fatalf("charge balance %v", bal)
			}
			if got := b.check(t, ws); float64(got.Available) != 250-tc.cost || float64(got.Held) != tc.held || float64(got.Used) != tc.used {
				t.Fatalf("balance %+v", got)
			}
			g := b.req(t, "GET", "/v1/charges/"+c["id"].(string), adminKey, nil)
			wantStatus(t, g, http.StatusOK)
			if got := g.json(t); !reflect.DeepEqual(got, c) {
				t.Fatalf("GET charge %v, POST answered %v", got, c)
			}
			// capture: true writes its hold and its capture together.
			if tc.status == "captured" {
				entries := b.ledgerAll(t, ws)
				if len(entries) != 3 || entries[0]["type"] != "capture" || entries[1]["type"] != "hold" || entries[0]["charge_id"] != c["id"] {
					t.Fatalf("ledger %v", entries)
				}
			}
		})
	}
}

func TestContractCaptureRelease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	id := func(r response) string { return r.json(t)["id"].(string) }
	a := id(b.charge(t, "w", "a", map[string]any{"operation": "image_1k"}, 201))
	c := id(b.charge(t, "w", "c", map[string]any{"operation": "section_generation"}, 201))
	if bal := b.check(t, "w"); bal.Available != 210 || bal.Held != 40 {
		t.Fatalf("balance %+v", bal)
	}

	capA := b.req(t, "POST", "/v1/charges/"+a+"/capture", adminKey, nil)
	wantStatus(t, capA, http.StatusOK)
	if got := capA.json(t); got["status"] != "captured" || got["id"] != a {
		t.Fatalf("capture %v", got)
	}
	again := b.req(t, "POST", "/v1/charges/"+a+"/capture", adminKey, nil)
	wantStatus(t, again, http.StatusOK)
	if !reflect.DeepEqual(again.json(t), capA.json(t)) {
		t.Fatalf("capture again %s, first %s", again.body, capA.body)
	}
	// An empty JSON object is accepted as the body too.
	wantStatus(t, b.req(t, "POST", "/v1/charges/"+a+"/capture", adminKey, `{}`), http.StatusOK)
	if bal := b.check(t, "w"); bal.Available != 210 || bal.Held != 10 || bal.Used != 30 {
		t.Fatalf("balance after capture %+v", bal)
	}

	relC := b.req(t, "POST", "/v1/charges/"+c+"/release", adminKey, nil)
	wantStatus(t, relC, http.StatusOK)
	if got := relC.json(t); got["status"] != "released" || got["balance"].(map[string]any)["available"] != 220.0 {
		t.Fatalf("release %v", got)
	}
	again = b.req(t, "POST", "/v1/charges/"+c+"/release", adminKey, nil)
	wantStatus(t, again, http.StatusOK)
	if !reflect.DeepEqual(again.json(t), relC.json(t)) {
		t.Fatalf("release again %s, first %s", again.body, relC.body)
	}
	before := b.snap(t, "w")
	if before.bal.Available != 220 || before.bal.Held != 0 || before.bal.Used != 30 {
		t.Fatalf("balance after release %+v", before.bal)
	}

	for _, tc := range []struct{ name, method, path string }{
		{"capture released", "POST", "/v1/charges/" + c + "/capture"},
		{"release captured", "POST", "/v1/charges/" + a + "/release"},
	} {
		wantProblem(t, b.req(t, tc.method, tc.path, adminKey, nil), http.StatusConflict, "charge_not_held", "")
	}
	for _, p := range []string{"/v1/charges/ch_nope", "/v1/charges/ch_nope/capture", "/v1/charges/ch_nope/release"} {
		m := "POST"
		if !strings.Contains(p, "/capture") && !strings.Contains(p, "/release") {
			m = "GET"
		}
		wantProblem(t, b.req(t, m, p, adminKey, nil), http.StatusNotFound, "not_found", "")
	}
	wantProblem(t, b.req(t, "POST", "/v1/charges/"+a+"/capture", adminKey, `{"x":1}`), http.StatusBadRequest, "invalid_request", "x")
	b.unchanged(t, "w", before)

	g := b.req(t, "GET", "/v1/charges/"+c, adminKey, nil)
	wantStatus(t, g, http.StatusOK)
	if got := g.json(t); got["status"] != "released" || got["id"] != c {
		t.Fatalf("GET charge %v", got)
	}
}

// A hold not captured by expires_at becomes expired, its credits return, and
// it can no longer be captured.
func TestContractChargeExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	c := b.charge(t, "w", "k", map[string]any{"operation": "image_1k", "hold_seconds": 30}, 201).json(t)["id"].(string)
	b.clock.Advance(30 * time.Second)
	g := b.req(t, "GET", "/v1/charges/"+c, adminKey, nil)
	wantStatus(t, g, http.StatusOK)
	if got := g.json(t); got["status"] != "expired" {
		t.Fatalf("charge %v", got)
	}
	if bal := b.check(t, "w"); bal.Available != 250 || bal.Held != 0 {
		t.Fatalf("balance %+v", bal)
	}
	wantProblem(t, b.req(t, "POST", "/v1/charges/"+c+"/capture", adminKey, nil), http.StatusConflict, "charge_not_held", "")
}

func TestContractInsufficientCredits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name     string
		plan     string
		body     map[string]any
		balance  float64
		required float64
		upgrade  any
	}{
		{"cheapest higher plan", "free", map[string]any{"operation": "image_2k", "quantity": 5}, 250, 300,
			map[string]any{"plan": "starter", "monthly_credits": 1000.0, "price_cents": 4900.0}},
		{"needs pro", "free", map[string]any{"operation": "image_2k", "quantity": 20}, 250, 1200,
			map[string]any{"plan": "pro", "monthly_credits": 5000.0, "price_cents": 7900.0}},
		{"largest plan otherwise", "free", map[string]any{"operation": "image_2k", "quantity": 100}, 250, 6000,
			map[string]any{"plan": "pro", "monthly_credits": 5000.0, "price_cents": 7900.0}},
		{"from starter", "starter", map[string]any{"operation": "image_1k", "quantity": 40, "capture": true}, 1000, 1200,
			map[string]any{"plan": "pro", "monthly_credits": 5000.0, "price_cents": 7900.0}},
		{"on the largest plan", "pro", map[string]any{"operation": "image_2k", "quantity": 100}, 5000, 6000, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := fmt.Sprintf("w%d", i)
			b.createWorkspace(t, ws, tc.plan)
			before := b.snap(t, ws)
			r := b.charge(t, ws, "k", tc.body, 0)
			p := wantProblem(t, r, http.StatusPaymentRequired, "insufficient_credits", "")
			hasKeys(t, "problem", p, "balance", "required", "shortfall", "plan", "upgrade")
			if p["balance"] != tc.balance || p["required"] != tc.required || p["shortfall"] != tc.required-tc.balance || p["plan"] != tc.plan {
				t.Fatalf("problem %v", p)
			}
			if !reflect.DeepEqual(p["upgrade"], tc.upgrade) {
				t.Fatalf("upgrade %v, want %v", p["upgrade"], tc.upgrade)
			}
			b.unchanged(t, ws, before)
			// The same request again is answered the same, still
			// charging nothing.
			again := b.charge(t, ws, "k", tc.body, 0)
			if p2 := wantProblem(t, again, http.StatusPaymentRequired, "insufficient_credits", ""); !reflect.DeepEqual(p2["upgrade"], p["upgrade"]) {
				t.Fatalf("again %v", p2)
			}
			b.unchanged(t, ws, before)
		})
	}
}

func TestContractIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t.Run("same key same body", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "same", "")
		body := map[string]any{"operation": "image_1k", "quantity": 2, "metadata": map[string]string{"a": "b"}}
		first := b.charge(t, "same", "key-1", body, 201).json(t)
		for range 3 {
			again := b.charge(t, "same", "key-1", body, 201).json(t)
			if again["id"] != first["id"] || again["status"] != first["status"] || again["cost"] != first["cost"] {
				t.Fatalf("again %v, first %v", again, first)
			}
		}
		// Captured since: the retry still names the same charge.
		wantStatus(t, b.req(t, "POST", "/v1/charges/"+first["id"].(string)+"/capture", adminKey, nil), http.StatusOK)
		if again := b.charge(t, "same", "key-1", body, 201).json(t); again["id"] != first["id"] {
			t.Fatalf("again %v", again)
		}
		if bal := b.check(t, "same"); bal.Available != 190 || bal.Used != 60 {
			t.Fatalf("charged more than once: %+v", bal)
		}
		if n := len(b.ledgerAll(t, "same")); n != 3 {
			t.Fatalf("%d ledger entries, want grant, hold, capture", n)
		}
	})
	t.Run("same key other body", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "other", "")
		b.charge(t, "other", "key-1", map[string]any{"operation": "image_1k"}, 201)
		before := b.snap(t, "other")
		for _, body := range []map[string]any{
			{"operation": "image_2k"},
			{"operation": "image_1k", "quantity": 2},
			{"operation": "image_1k", "capture": true},
			{"operation": "image_1k", "member_id": "m"},
			{"operation": "image_1k", "hold_seconds": 60},
			{"operation": "image_1k", "metadata": map[string]string{"x": "y"}},
		} {
			r := b.charge(t, "other", "key-1", body, 0)
			wantProblem(t, r, http.StatusConflict, "idempotency_key_reused", "")
		}
		b.unchanged(t, "other", before)
		// Defaults written out are the same request.
		b.charge(t, "other", "key-1", map[string]any{"operation": "image_1k", "quantity": 1, "hold_seconds": 600, "capture": false}, 201)
		b.unchanged(t, "other", before)
	})
	t.Run("scoped to the workspace", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "scope-a", "")
		b.createWorkspace(t, "scope-b", "")
		body := map[string]any{"operation": "image_1k"}
		a := b.charge(t, "scope-a", "shared", body, 201).json(t)
		c := b.charge(t, "scope-b", "shared", body, 201).json(t)
		if a["id"] == c["id"] || c["workspace_id"] != "scope-b" {
			t.Fatalf("a %v, b %v", a, c)
		}
		if ba, bb := b.check(t, "scope-a"), b.check(t, "scope-b"); ba.Available != 220 || bb.Available != 220 {
			t.Fatalf("balances %+v %+v", ba, bb)
		}
	})
	t.Run("a 400 stores no answer", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "retry", "")
		before := b.snap(t, "retry")
		wantProblem(t, b.charge(t, "retry", "r1", map[string]any{"operation": "image_1k", "quantity": 0}, 0), 400, "invalid_request", "quantity")
		wantProblem(t, b.charge(t, "retry", "r1", `{"operation":`, 0), 400, "invalid_request", "body")
		wantProblem(t, b.charge(t, "retry", "r1", map[string]any{"operation": "video"}, 0), 400, "invalid_request", "operation")
		wantProblem(t, b.req(t, "POST", "/v1/workspaces/retry/charges", "wrong", map[string]any{"operation": "image_1k"}, "Idempotency-Key: r1"), 401, "unauthorized", "")
		b.unchanged(t, "retry", before)
		c := b.charge(t, "retry", "r1", map[string]any{"operation": "image_2k"}, 201).json(t)
		if c["operation"] != "image_2k" {
			t.Fatalf("charge %v", c)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "conc", "")
		body := map[string]any{"operation": "image_1k"}
		const n = 16
		results := make(chan response, n)
		for range n {
			go func() {
				results <- b.req(t, "POST", "/v1/workspaces/conc/charges", adminKey, body, "Idempotency-Key: same")
			}()
		}
		ids := map[any]bool{}
		for range n {
			r := <-results
			switch r.status {
			case http.StatusCreated:
				ids[r.json(t)["id"]] = true
			case http.StatusConflict:
				wantProblem(t, r, http.StatusConflict, "request_in_progress", "")
			default:
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		}
		if len(ids) != 1 {
			t.Fatalf("%d different charges for one key", len(ids))
		}
		if bal := b.check(t, "conc"); bal.Available != 220 || bal.Held != 30 {
			t.Fatalf("charged more than once: %+v", bal)
		}
	})
	t.Run("kept 24 hours", func(t *testing.T) {
		t.Parallel()
		b2 := setup(t)
		b2.createWorkspace(t, "keep", "")
		body := map[string]any{"operation": "image_1k", "capture": true}
		first := b2.charge(t, "keep", "day", body, 201).json(t)
		b2.clock.Advance(24*time.Hour - time.Second)
		again := b2.charge(t, "keep", "day", body, 201).json(t)
		if again["id"] != first["id"] {
			t.Fatalf("a day later %v, first %v", again, first)
		}
		if bal := b2.check(t, "keep"); bal.Used != 30 || bal.Available != 220 {
			t.Fatalf("charged again: %+v", bal)
		}
		wantProblem(t, b2.charge(t, "keep", "day", map[string]any{"operation": "image_2k"}, 0), 409, "idempotency_key_reused", "")
	})
	t.Run("key length", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "keylen", "")
		before := b.snap(t, "keylen")
		wantProblem(t, b.charge(t, "keylen", strings.Repeat("k", 256), map[string]any{"operation": "image_1k"}, 0), 400, "invalid_request", "Idempotency-Key")
		wantProblem(t, b.req(t, "POST", "/v1/workspaces/keylen/charges", adminKey, map[string]any{"operation": "image_1k"}), 400, "invalid_request", "Idempotency-Key")
		b.unchanged(t, "keylen", before)
		b.charge(t, "keylen", strings.Repeat("k", 255), map[string]any{"operation": "image_1k"}, 201)
	})
}

// Bad input gets a problem naming the field and changes nothing.
func TestContractChargeBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	b.charge(t, "w", "seed", map[string]any{"operation": "image_1k"}, 201)
	before := b.snap(t, "w")
	big := `{"operation":"image_1k","metadata":{"a":"` + strings.Repeat("x", 1<<20) + `"}}`
	tests := []struct {
		name    string
		ws      string
		body    any
		key     string // "-" for none
		status  int
		code    string
		field   string
		noField bool
	}{
		{"malformed JSON", "w", `{"operation":"image_1k"`, "", 400, "invalid_request", "body", false},
		{"trailing comma", "w", `{"operation":"image_1k",}`, "", 400, "invalid_request", "body", false},
		{"empty body", "w", ``, "", 400, "invalid_request", "body", false},
		{"blank body", "w", "  \n", "", 400, "invalid_request", "body", false},
		{"not an object", "w", `["image_1k"]`, "", 400, "invalid_request", "body", false},
		{"trailing data", "w", `{"operation":"image_1k"} {}`, "", 400, "invalid_request", "body", false},
		{"unknown field", "w", `{"operation":"image_1k","priority":1}`, "", 400, "invalid_request", "priority", false},
		{"quantity a string", "w", `{"operation":"image_1k","quantity":"2"}`, "", 400, "invalid_request", "quantity", false},
		{"quantity a float", "w", `{"operation":"image_1k","quantity":1.5}`, "", 400, "invalid_request", "quantity", false},
		{"operation a number", "w", `{"operation":30}`, "", 400, "invalid_request", "operation", false},
		{"capture a string", "w", `{"operation":"image_1k","capture":"yes"}`, "", 400, "invalid_request", "capture", false},
		{"hold_seconds a string", "w", `{"operation":"image_1k","hold_seconds":"60"}`, "", 400, "invalid_request", "hold_seconds", false},
		{"metadata an array", "w", `{"operation":"image_1k","metadata":["a"]}`, "", 400, "invalid_request", "metadata", false},
		{"unknown operation", "w", `{"operation":"video"}`, "", 400, "invalid_request", "operation", false},
		{"no operation", "w", `{"quantity":1}`, "", 400, "invalid_request", "operation", false},
		{"quantity 0", "w", `{"operation":"image_1k","quantity":0}`, "", 400, "invalid_request", "quantity", false},
		{"quantity -1", "w", `{"operation":"image_1k","quantity":-1}`, "", 400, "invalid_request", "quantity", false},
		{"quantity too large", "w", `{"operation":"image_1k","quantity":1000001}`, "", 400, "invalid_request", "quantity", false},
		{"hold_seconds 0", "w", `{"operation":"image_1k","hold_seconds":0}`, "", 400, "invalid_request", "hold_seconds", false},
		{"hold_seconds -1", "w", `{"operation":"image_1k","hold_seconds":-1}`, "", 400, "invalid_request", "hold_seconds", false},
		{"hold_seconds 3601", "w", `{"operation":"image_1k","hold_seconds":3601}`, "", 400, "invalid_request", "hold_seconds", false},
		{"member_id empty", "w", `{"operation":"image_1k","member_id":""}`, "", 400, "invalid_request", "member_id", false},
		{"no Idempotency-Key", "w", `{"operation":"image_1k"}`, "-", 400, "invalid_request", "Idempotency-Key", false},
		{"Idempotency-Key too long", "w", `{"operation":"image_1k"}`, strings.Repeat("x", 256), 400, "invalid_request", "Idempotency-Key", false},
		{"body over 1 MiB", "w", big, "", 413, "payload_too_large", "", true},
		{"unknown workspace", "nope", `{"operation":"image_1k"}`, "", 404, "not_found", "", true},
	}
	t.Run("group", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				var hdr []string
				switch tc.key {
				case "":
					hdr = []string{"Idempotency-Key: retry-me"}
				case "-":
				default:
					hdr = []string{"Idempotency-Key: " + tc.key}
				}
				r := b.req(t, "POST", "/v1/workspaces/"+tc.ws+"/charges", adminKey, tc.body, hdr...)
				p := wantProblem(t, r, tc.status, tc.code, tc.field)
				if _, ok := p["field"]; tc.noField == ok {
					t.Fatalf("problem %v: field present %v", p, ok)
				}
				if r.header.Get("Cache-Control") != "no-store" {
					t.Fatalf("cache control %q", r.header.Get("Cache-Control"))
				}
				b.unchanged(t, "w", before)
			})
		}
	})
	// None of them stored an answer under the key.
	b.charge(t, "w", "retry-me", map[string]any{"operation": "content_rewrite"}, 201)
	// A body of exactly 1 MiB is accepted.
	exact := `{"operation":"content_rewrite"}`
	exact += strings.Repeat(" ", 1<<20-len(exact))
	b.charge(t, "w", "exact", exact, 201)
	if bal := b.check(t, "w"); bal.Available != 218 {
		t.Fatalf("balance %+v", bal)
	}
}

// Unknown routes, wrong methods and unknown charges answer problems and
// change nothing.
func TestContractRouting(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	before := b.snap(t, "w")
	tests := []struct {
		method, path string
		status       int
		code         string
		allow        []string
	}{
		{"GET", "/nope", 404, "not_found", nil},
		{"GET", "/v1/workspaces/w/nope", 404, "not_found", nil},
		{"POST", "/v1/charges", 404, "not_found", nil},
		{"GET", "/v1//nope", 404, "not_found", nil}, // an unclean path that matches nothing once cleaned
		{"DELETE", "/v1/workspaces/w", 405, "method_not_allowed", []string{"GET"}},
		{"PUT", "/v1/workspaces/w/charges", 405, "method_not_allowed", []string{"POST"}},
		{"GET", "/v1/workspaces/w/charges", 405, "method_not_allowed", []string{"POST"}},
		{"POST", "/v1/workspaces/w/balance", 405, "method_not_allowed", []string{"GET"}},
		{"GET", "/v1/workspaces/w/plan", 405, "method_not_allowed", []string{"PUT"}},
		{"POST", "/v1/catalog", 405, "method_not_allowed", []string{"GET"}},
		{"GET", "/v1/estimate", 405, "method_not_allowed", []string{"POST"}},
		{"DELETE", "/v1/api-keys", 405, "method_not_allowed", []string{"GET", "POST"}},
		{"GET", "/v1/charges/x/capture", 405, "method_not_allowed", []string{"POST"}},
		{"POST", "/healthz", 405, "method_not_allowed", []string{"GET"}},
	}
	// Unknown routes are answered before auth.
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			for _, secret := range []string{"", adminKey} {
				r := b.req(t, tc.method, tc.path, secret, nil)
				wantProblem(t, r, tc.status, tc.code, "")
				if tc.allow != nil {
					allow := strings.Split(r.header.Get("Allow"), ",")
					for i := range allow {
						allow[i] = strings.TrimSpace(allow[i])
					}
					for _, m := range tc.allow {
						if !slices.Contains(allow, m) {
							t.Fatalf("Allow %q lacks %s", r.header.Get("Allow"), m)
						}
					}
					if slices.Contains(allow, tc.method) {
						t.Fatalf("Allow %q names %s", r.header.Get("Allow"), tc.method)
					}
				}
			}
		})
	}
	// Unknown charges, with a valid secret.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/charges/ch_nope"},
		{"POST", "/v1/charges/ch_nope/capture"},
		{"POST", "/v1/charges/ch_nope/release"},
	} {
		wantProblem(t, b.req(t, tc.method, tc.path, adminKey, nil), 404, "not_found", "")
	}
	b.unchanged(t, "w", before)
}

// --------------------------------------------------------------------- Plans

func TestContractPlans(t *testing.T) {
	t.Parallel()
	b := setup(t)
	plan := func(t *testing.T, ws, p string) response {
		t.Helper()
		return b.req(t, "PUT", "/v1/workspaces/"+ws+"/plan", adminKey, map[string]any{"plan": p})
	}
	workspace := func(t *testing.T, ws string) map[string]any {
		t.Helper()
		r := b.req(t, "GET", "/v1/workspaces/"+ws, adminKey, nil)
		wantStatus(t, r, http.StatusOK)
		return r.json(t)
	}
	t.Run("upgrade", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "up", "")
		b.charge(t, "up", "k", map[string]any{"operation": "image_1k", "capture": true}, 201)
		b.charge(t, "up", "k2", map[string]any{"operation": "section_generation"}, 201)
		wantStatus(t, plan(t, "up", "starter"), http.StatusOK)
		if ws := workspace(t, "up"); ws["plan"] != "starter" || ws["pending_plan"] != nil {
			t.Fatalf("workspace %v", ws)
		}
		bal := b.check(t, "up")
		if bal.Plan != "starter" || bal.MonthlyCredits != 1000 || bal.Granted != 1000 || bal.Available != 960 || bal.Held != 10 || bal.Used != 30 {
			t.Fatalf("balance %+v", bal)
		}
		e := b.ledgerAll(t, "up")[0]
		if e["type"] != "upgrade" || e["amount"] != 750.0 || e["available_after"] != 960.0 {
			t.Fatalf("ledger entry %v", e)
		}
		// Straight on to the largest plan.
		wantStatus(t, plan(t, "up", "pro"), http.StatusOK)
		if bal := b.check(t, "up"); bal.Granted != 5000 || bal.Available != 4960 {
			t.Fatalf("balance %+v", bal)
		}
	})
	t.Run("downgrade", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "down", "pro")
		before := b.snap(t, "down")
		wantStatus(t, plan(t, "down", "starter"), http.StatusOK)
		if ws := workspace(t, "down"); ws["plan"] != "pro" || ws["pending_plan"] != "starter" {
			t.Fatalf("workspace %v", ws)
		}
		b.unchanged(t, "down", before)
	})
	t.Run("same plan", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "same", "starter")
		before := b.snap(t, "same")
		ws := workspace(t, "same")
		wantStatus(t, plan(t, "same", "starter"), http.StatusOK)
		b.unchanged(t, "same", before)
		if got := workspace(t, "same"); !reflect.DeepEqual(got, ws) {
			t.Fatalf("workspace %v, was %v", got, ws)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		b.createWorkspace(t, "bad", "")
		before := b.snap(t, "bad")
		for _, tc := range []struct {
			body   any
			status int
			code   string
			field  string
		}{
			{map[string]any{"plan": "gold"}, 400, "invalid_request", "plan"},
			{map[string]any{"plan": ""}, 400, "invalid_request", "plan"},
			{`{}`, 400, "invalid_request", "plan"},
			{`{"plan":1}`, 400, "invalid_request", "plan"},
			{`{"plan":"pro","when":"now"}`, 400, "invalid_request", "when"},
			{``, 400, "invalid_request", "body"},
		} {
			wantProblem(t, b.req(t, "PUT", "/v1/workspaces/bad/plan", adminKey, tc.body), tc.status, tc.code, tc.field)
		}
		wantProblem(t, plan(t, "nope", "pro"), 404, "not_found", "")
		if ws := workspace(t, "bad"); ws["plan"] != "free" || ws["pending_plan"] != nil {
			t.Fatalf("workspace %v", ws)
		}
		b.unchanged(t, "bad", before)
	})
}

// -------------------------------------------------------------------- Ledger

func TestContractLedger(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	step := func() time.Time { b.clock.Advance(time.Second); return b.clock.Now() }
	idOf := func(r response) string { return r.json(t)["id"].(string) }

	t1 := step()
	a := idOf(b.charge(t, "w", "a", map[string]any{"operation": "image_1k", "member_id": "m1"}, 201))
	t2 := step()
	wantStatus(t, b.req(t, "POST", "/v1/charges/"+a+"/capture", adminKey, nil), 200)
	t3 := step()
	c := idOf(b.charge(t, "w", "c", map[string]any{"operation": "content_rewrite", "quantity": 5}, 201))
	t4 := step()
	wantStatus(t, b.req(t, "POST", "/v1/charges/"+c+"/release", adminKey, nil), 200)
	t5 := step()
	d := idOf(b.charge(t, "w", "d", map[string]any{"operation": "section_generation", "capture": true, "member_id": "m2"}, 201))

	type entry struct {
		at                 time.Time
		typ                string
		amount, after      float64
		charge, op, member string
	}
	want := []entry{
		{t5, "capture", 0, 210, d, "section_generation", "m2"},
		{t5, "hold", -10, 210, d, "section_generation", "m2"},
		{t4, "release", 5, 220, c, "content_rewrite", ""},
		{t3, "hold", -5, 215, c, "content_rewrite", ""},
		{t2, "capture", 0, 220, a, "image_1k", "m1"},
		{t1, "hold", -30, 220, a, "image_1k", "m1"},
		{epoch, "grant", 250, 250, "", "", ""},
	}
	r := b.req(t, "GET", "/v1/workspaces/w/ledger", adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	page := r.json(t)
	hasKeys(t, "ledger page", page, "entries", "next_cursor")
	if page["next_cursor"] != nil {
		t.Fatalf("next_cursor %v on the only page", page["next_cursor"])
	}
	entries := page["entries"].([]any)
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d: %s", len(entries), len(want), r.body)
	}
	seen := map[string]bool{}
	for i, w := range want {
		e := entries[i].(map[string]any)
		hasKeys(t, "entry", e, "id", "at", "type", "amount", "available_after")
		id, _ := e["id"].(string)
		if id == "" || seen[id] {
			t.Fatalf("entry %d id %q", i, id)
		}
		seen[id] = true
		wantTime(t, fmt.Sprintf("entries[%d].at", i), e["at"], w.at)
		if e["type"] != w.typ || e["amount"] != w.amount || e["available_after"] != w.after {
			t.Fatalf("entries[%d] %v, want %+v", i, e, w)
		}
		for k, v := range map[string]string{"charge_id": w.charge, "operation": w.op, "member_id": w.member} {
			if got, ok := e[k]; v == "" && ok && got != nil && got != "" || v != "" && got != v {
				t.Fatalf("entries[%d].%s %v, want %q", i, k, got, v)
			}
		}
	}
	if bal := b.check(t, "w"); bal.Available != 210 {
		t.Fatalf("balance %+v", bal)
	}

	t.Run("limit", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			q string
			n int
		}{{"limit=1", 1}, {"limit=3", 3}, {"limit=500", 7}, {"", 7}} {
			r := b.req(t, "GET", "/v1/workspaces/w/ledger?"+tc.q, adminKey, nil)
			wantStatus(t, r, http.StatusOK)
			var p struct {
				Entries    []map[string]any `json:"entries"`
				NextCursor *string          `json:"next_cursor"`
			}
			r.decode(t, &p)
			if len(p.Entries) != tc.n || (p.NextCursor != nil) != (tc.n < 7) {
				t.Fatalf("%s: %d entries, next_cursor %v", tc.q, len(p.Entries), p.NextCursor)
			}
		}
		for _, q := range []string{"limit=0", "limit=501", "limit=abc", "limit=-1", "limit=1.5", "limit="} {
			wantProblem(t, b.req(t, "GET", "/v1/workspaces/w/ledger?"+q, adminKey, nil), 400, "invalid_request", "limit")
		}
	})
	t.Run("bad cursor", func(t *testing.T) {
		t.Parallel()
		for _, c := range []string{"garbage!", "bGU6MA", "bGU6eA", "eHg6MQ", "%%%"} {
			wantProblem(t, b.req(t, "GET", "/v1/workspaces/w/ledger?cursor="+url.QueryEscape(c), adminKey, nil), 400, "invalid_request", "cursor")
		}
	})
}

// Paging with next_cursor covers every entry exactly once, newest first.
func TestContractLedgerPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "pro")
	for i := range 40 {
		b.clock.Advance(time.Second)
		b.charge(t, "w", fmt.Sprint("k", i), map[string]any{"operation": "content_rewrite", "capture": i%2 == 0}, 201)
	}
	all := b.ledgerAll(t, "w")
	if len(all) != 1+40+20 {
		t.Fatalf("%d entries", len(all))
	}
	for _, limit := range []int{1, 7, 20, 61, 100} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			t.Parallel()
			var got []map[string]any
			path := fmt.Sprintf("/v1/workspaces/w/ledger?limit=%d", limit)
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				r := b.req(t, "GET", path, adminKey, nil)
				wantStatus(t, r, http.StatusOK)
				var p struct {
					Entries    []map[string]any `json:"entries"`
					NextCursor *string          `json:"next_cursor"`
				}
				r.decode(t, &p)
				if len(p.Entries) > limit || len(p.Entries) == 0 {
					t.Fatalf("page of %d entries with limit %d", len(p.Entries), limit)
				}
				got = append(got, p.Entries...)
				if p.NextCursor == nil {
					break
				}
				path = fmt.Sprintf("/v1/workspaces/w/ledger?limit=%d&cursor=%s", limit, url.QueryEscape(*p.NextCursor))
			}
			if !reflect.DeepEqual(got, all) {
				t.Fatalf("paged %d entries, want the %d of one page in the same order", len(got), len(all))
			}
			var last time.Time
			for i, e := range got {
				at, _ := time.Parse(time.RFC3339Nano, e["at"].(string))
				if i > 0 && at.After(last) {
					t.Fatalf("entry %d is newer than the one before", i)
				}
				last = at
			}
		})
	}
}

// ---------------------------------------------------------------------- Auth

// cred is one kind of caller of the auth matrix.
type cred int

const (
	credNone cred = iota
	credMalformed
	credWrong
	credRevoked
	credExpired
	credTampered
	credOtherSession
	credSession
	credRead
	credService
	credAdminAPI
	credAdmin
	numCreds
)

var credNames = [numCreds]string{"none", "Basic x", "wrong secret", "revoked API key", "expired session", "tampered session",
	"session of another workspace", "session", "read key", "service key", "admin API key", "admin key"}

// access is who a route lets in, per the contract's Auth section.
type access int

const (
	accPublic   access = iota
	accAdmin           // admin key, admin API keys
	accIssuer          // + service keys (session tokens)
	accKeyRead         // + service and read keys (GET workspace)
	accReader          // + service and read keys, sessions of the workspace
	accOperator        // + service keys, sessions of the workspace (charges)
)

// expect is the status class a credential gets on a route: 401, 403 or 0
// for allowed (neither).
func expect(a access, c cred) int {
	if a == accPublic {
		return 0
	}
	switch c {
	case credNone, credMalformed, credWrong, credRevoked, credExpired, credTampered:
		return 401
	case credAdmin, credAdminAPI:
		return 0
	case credService:
		if a == accAdmin {
			return 403
		}
		return 0
	case credRead:
		if a == accKeyRead || a == accReader {
			return 0
		}
		return 403
	case credSession:
		if a == accReader || a == accOperator {
			return 0
		}
		return 403
	}
	return 403 // another workspace's session
}

// TestContractAuthMatrix calls every route of server.go with every kind of
// credential and asserts 401, 403 or allowed.
func TestContractAuthMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "pro")
	b.createWorkspace(t, "w2", "")
	chargeID := func(key string) string {
		return b.charge(t, "w", key, map[string]any{"operation": "content_rewrite"}, 201).json(t)["id"].(string)
	}
	toCapture, toRelease := chargeID("cap"), chargeID("rel")

	var secrets [numCreds]string
	r := b.req(t, "POST", "/v1/workspaces/w/session-tokens", adminKey, map[string]any{"member_id": "m0", "ttl_seconds": 1})
	wantStatus(t, r, http.StatusCreated)
	secrets[credExpired] = r.json(t)["token"].(string)
	secrets[credSession] = b.session(t, "w", "m1")
	tok := []byte(b.session(t, "w", "m1"))
	if tok[len(tok)-2] == 'A' {
		tok[len(tok)-2] = 'B'
	} else {
		tok[len(tok)-2] = 'A'
	}
	secrets[credTampered] = string(tok)
	secrets[credOtherSession] = b.session(t, "w2", "m2")
	secrets[credRead] = b.apiKey(t, "read")
	secrets[credService] = b.apiKey(t, "service")
	secrets[credAdminAPI] = b.apiKey(t, "admin")
	secrets[credAdmin] = adminKey
	secrets[credWrong] = "crk_definitely-not-a-key"
	revoked := b.req(t, "POST", "/v1/api-keys", adminKey, map[string]any{"name": "revoked", "scope": "admin"})
	wantStatus(t, revoked, http.StatusCreated)
	secrets[credRevoked] = revoked.json(t)["secret"].(string)
	wantStatus(t, b.req(t, "DELETE", "/v1/api-keys/"+revoked.json(t)["id"].(string), adminKey, nil), http.StatusOK)
	// Revoked by every cell allowed to: revoking again answers 200.
	victim := b.req(t, "POST", "/v1/api-keys", adminKey, map[string]any{"name": "victim", "scope": "read"})
	wantStatus(t, victim, http.StatusCreated)
	victimID := victim.json(t)["id"].(string)
	b.clock.Advance(2 * time.Second) // the 1 s token expires; the others live 600 s
	header := func(c cred) string {
		switch c {
		case credNone:
			return ""
		case credMalformed:
			return "Basic x"
		}
		return "Bearer " + secrets[c]
	}

	type route struct {
		method, path string
		access       access
		body         func(cell string) any
		headers      func(cell string) []string
	}
	routes := []route{
		{"GET", "/healthz", accPublic, nil, nil},
		{"GET", "/v1/catalog", accPublic, nil, nil},
		{"POST", "/v1/estimate", accPublic, func(string) any {
			return map[string]any{"items": []any{map[string]any{"operation": "image_1k", "count": 1}}}
		}, nil},
		{"POST", "/v1/api-keys", accAdmin, func(c string) any { return map[string]any{"name": c, "scope": "read"} }, nil},
		{"GET", "/v1/api-keys", accAdmin, nil, nil},
		{"DELETE", "/v1/api-keys/" + victimID, accAdmin, nil, nil},
		{"GET", "/v1/admin/verify", accAdmin, nil, nil},
		{"POST", "/v1/workspaces", accAdmin, func(c string) any { return map[string]any{"name": c} }, nil},
		{"GET", "/v1/workspaces/w", accKeyRead, nil, nil},
		{"GET", "/v1/workspaces/w/balance", accReader, nil, nil},
		{"GET", "/v1/workspaces/w/balance/stream", accReader, nil, nil},
		{"POST", "/v1/workspaces/w/session-tokens", accIssuer, func(string) any { return map[string]any{"member_id": "m9", "ttl_seconds": 60} }, nil},
		{"POST", "/v1/workspaces/w/charges", accOperator, func(string) any { return map[string]any{"operation": "avatar_selection"} },
			func(c string) []string { return []string{"Idempotency-Key: " + c} }},
		{"PUT", "/v1/workspaces/w/plan", accAdmin, func(string) any { return map[string]any{"plan": "pro"} }, nil},
		{"POST", "/v1/workspaces/w/adjustments", accAdmin, func(string) any { return map[string]any{"amount": 1, "reason": "auth matrix"} }, nil},
		{"GET", "/v1/workspaces/w/ledger", accReader, nil, nil},
		{"POST", "/v1/workspaces/w/ai/avatar_selection", accOperator, func(string) any { return map[string]any{"prompt": "matrix"} },
			func(c string) []string { return []string{"Idempotency-Key: " + c} }},
		{"GET", "/v1/charges/" + toCapture, accReader, nil, nil},
		{"POST", "/v1/charges/" + toCapture + "/capture", accOperator, nil, nil},
		{"POST", "/v1/charges/" + toRelease + "/release", accOperator, nil, nil},
	}
	coversEveryRoute(t, func(yield func(method, path string) bool) {
		for _, rt := range routes {
			if !yield(rt.method, rt.path) {
				return
			}
		}
	})
	for _, rt := range routes {
		for c := range numCreds {
			name := rt.method + " " + rt.path + " as " + credNames[c]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				want := expect(rt.access, c)
				var res response
				if strings.HasSuffix(rt.path, "/stream") {
					res = b.stream(t, rt.path, header(c)).response
				} else {
					var body any
					if rt.body != nil {
						body = rt.body(name)
					}
					var hdr []string
					if rt.headers != nil {
						hdr = rt.headers(fmt.Sprintf("matrix-%d", c))
					}
					if h := header(c); h != "" {
						hdr = append(hdr, "Authorization: "+h)
					}
					res = b.req(t, rt.method, rt.path, "", body, hdr...)
				}
				switch want {
				case 401:
					wantProblem(t, res, 401, "unauthorized", "")
				case 403:
					wantProblem(t, res, 403, "forbidden", "")
				default:
					if res.status == 401 || res.status == 403 || res.status >= 300 {
						t.Fatalf("status %d, want it allowed; body %s", res.status, res.body)
					}
				}
			})
		}
	}
}

// A session token is valid only for its workspace and member.
func TestContractSessionTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	b.createWorkspace(t, "w2", "")
	r := b.req(t, "POST", "/v1/workspaces/w/session-tokens", adminKey, map[string]any{"member_id": "m1", "ttl_seconds": 600})
	wantStatus(t, r, http.StatusCreated)
	st := r.json(t)
	hasKeys(t, "session token", st, "token", "expires_at")
	wantTime(t, "expires_at", st["expires_at"], epoch.Add(600*time.Second))
	tok := st["token"].(string)
	other := b.session(t, "w2", "m2")
	otherCharge := b.charge(t, "w2", "o", map[string]any{"operation": "image_1k"}, 201).json(t)["id"].(string)

	// Its charges name its member.
	c := b.charge(t, "w", "s1", map[string]any{"operation": "image_1k"}, 201, tok).json(t)
	if c["member_id"] != "m1" {
		t.Fatalf("charge %v", c)
	}
	c2 := b.charge(t, "w", "s2", map[string]any{"operation": "content_rewrite", "member_id": "m1"}, 201, tok).json(t)
	if c2["member_id"] != "m1" {
		t.Fatalf("charge %v", c2)
	}
	before := b.snap(t, "w")
	wantProblem(t, b.charge(t, "w", "s3", map[string]any{"operation": "image_1k", "member_id": "m2"}, 0, tok), 403, "forbidden", "")
	wantProblem(t, b.charge(t, "w2", "s4", map[string]any{"operation": "image_1k"}, 0, tok), 403, "forbidden", "")
	b.unchanged(t, "w", before)
	// A 403 stores no answer: the corrected request runs under the key.
	if c3 := b.charge(t, "w", "s3", map[string]any{"operation": "avatar_selection"}, 201, tok).json(t); c3["member_id"] != "m1" {
		t.Fatalf("charge %v", c3)
	}

	// It reads and settles its workspace's charges, not another's.
	id := c["id"].(string)
	wantStatus(t, b.req(t, "GET", "/v1/charges/"+id, tok, nil), 200)
	wantStatus(t, b.req(t, "POST", "/v1/charges/"+id+"/capture", tok, nil), 200)
	wantStatus(t, b.req(t, "POST", "/v1/charges/"+c2["id"].(string)+"/release", tok, nil), 200)
	otherBefore := b.snap(t, "w2")
	for _, p := range []string{"/v1/charges/" + otherCharge + "/capture", "/v1/charges/" + otherCharge + "/release"} {
		wantProblem(t, b.req(t, "POST", p, tok, nil), 403, "forbidden", "")
	}
	wantProblem(t, b.req(t, "GET", "/v1/charges/"+otherCharge, tok, nil), 403, "forbidden", "")
	wantProblem(t, b.req(t, "GET", "/v1/charges/"+id, other, nil), 403, "forbidden", "")
	b.unchanged(t, "w2", otherBefore)

	// ?access_token= is for the stream only.
	wantProblem(t, b.req(t, "GET", "/v1/workspaces/w/balance?access_token="+url.QueryEscape(tok), "", nil), 401, "unauthorized", "")

	// It expires.
	b.clock.Advance(600 * time.Second)
	wantProblem(t, b.req(t, "GET", "/v1/workspaces/w/balance", tok, nil), 401, "unauthorized", "")

	for _, tc := range []struct {
		ws     string
		body   any
		status int
		code   string
		field  string
	}{
		{"w", map[string]any{"member_id": ""}, 400, "invalid_request", "member_id"},
		{"w", map[string]any{"ttl_seconds": 60}, 400, "invalid_request", "member_id"},
		{"w", map[string]any{"member_id": "m", "ttl_seconds": 0}, 400, "invalid_request", "ttl_seconds"},
		{"w", map[string]any{"member_id": "m", "ttl_seconds": "60"}, 400, "invalid_request", "ttl_seconds"},
		{"w", map[string]any{"member_id": "m", "role": "owner"}, 400, "invalid_request", "role"},
		{"nope", map[string]any{"member_id": "m"}, 404, "not_found", ""},
	} {
		wantProblem(t, b.req(t, "POST", "/v1/workspaces/"+tc.ws+"/session-tokens", adminKey, tc.body), tc.status, tc.code, tc.field)
	}
}

// API keys: the secret is shown once, lists never show it, scopes are checked.
func TestContractAPIKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	secrets := map[string]string{}
	for _, scope := range []string{"admin", "service", "read"} {
		r := b.req(t, "POST", "/v1/api-keys", adminKey, map[string]any{"name": scope + " key", "scope": scope})
		wantStatus(t, r, http.StatusCreated)
		k := r.json(t)
		hasKeys(t, "api key", k, "id", "name", "scope", "secret")
		if k["name"] != scope+" key" || k["scope"] != scope || k["secret"] == "" {
			t.Fatalf("key %v", k)
		}
		secrets[k["id"].(string)] = k["secret"].(string)
		wantStatus(t, b.req(t, "GET", "/v1/workspaces/w/balance", k["secret"].(string), nil), 200)
	}
	r := b.req(t, "GET", "/v1/api-keys", adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), "secret") {
		t.Fatalf("the list shows secrets: %s", r.body)
	}
	for _, s := range secrets {
		if strings.Contains(string(r.body), s) {
			t.Fatalf("the list shows a secret: %s", r.body)
		}
	}
	var list struct {
		Keys []map[string]any `json:"api_keys"`
	}
	r.decode(t, &list)
	if len(list.Keys) != 3 {
		t.Fatalf("listed %s", r.body)
	}
	for _, k := range list.Keys {
		if _, ok := secrets[k["id"].(string)]; !ok {
			t.Fatalf("unknown key listed %v", k)
		}
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"name": "x", "scope": "root"}, "scope"},
		{map[string]any{"name": "x"}, "scope"},
		{map[string]any{"name": "x", "scope": "ADMIN"}, "scope"},
		{map[string]any{"scope": "read"}, "name"},
		{map[string]any{"name": "x", "scope": "read", "expires": 1}, "expires"},
		{`{"name":"x","scope":3}`, "scope"},
		{``, "body"},
	} {
		wantProblem(t, b.req(t, "POST", "/v1/api-keys", adminKey, tc.body), 400, "invalid_request", tc.field)
	}
	r = b.req(t, "GET", "/v1/api-keys", adminKey, nil)
	r.decode(t, &list)
	if len(list.Keys) != 3 {
		t.Fatalf("a refused key was made: %s", r.body)
	}
}
