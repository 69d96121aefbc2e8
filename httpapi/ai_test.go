package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/internal/testserver"
)

// The AI route over a real listener, on the demo provider.
func TestAIOperations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	tok := b.session(t, "w", "alice")

	r := b.req(t, "POST", "/v1/workspaces/w/ai/content_rewrite", tok, map[string]any{"prompt": "shorter", "text": "our   shop sells bread"}, "Idempotency-Key: r1")
	wantStatus(t, r, http.StatusOK)
	var resp struct {
		Charge struct {
			ID, Status, Operation string
			Cost                  int64
			MemberID              string `json:"member_id"`
			Balance               struct{ Available, Used int64 }
		}
		Result ai.Result
	}
	r.decode(t, &resp)
	if resp.Charge.Status != "captured" || resp.Charge.Cost != 1 || resp.Charge.MemberID != "alice" || resp.Charge.Balance.Available != 249 ||
		!strings.Contains(resp.Result.Text, "Our shop sells bread.") || resp.Result.Provider != "demo" {
		t.Fatalf("answer %s", r.body)
	}
	// The same request again: the same answer, charged once.
	again := b.req(t, "POST", "/v1/workspaces/w/ai/content_rewrite", tok, map[string]any{"prompt": "shorter", "text": "our   shop sells bread"}, "Idempotency-Key: r1")
	wantStatus(t, again, http.StatusOK)
	if string(again.body) != string(r.body) {
		t.Fatalf("replay differs:\n%s\n%s", r.body, again.body)
	}
	if bal := b.check(t, "w"); bal.Used != 1 {
		t.Fatalf("used %d", bal.Used)
	}

	// An image with the balance shown by the answer.
	img := b.req(t, "POST", "/v1/workspaces/w/ai/image_1k", adminKey, map[string]any{"prompt": "a loaf"}, "Idempotency-Key: i1")
	wantStatus(t, img, http.StatusOK)
	var ir struct {
		Result struct{ Image ai.Image }
	}
	img.decode(t, &ir)
	if ir.Result.Image.Width != 1024 || ir.Result.Image.Height != 1024 || ir.Result.Image.MimeType != "image/png" || ir.Result.Image.DataBase64 == "" {
		t.Fatalf("image %+v", ir.Result.Image.Width)
	}

	// A failure: 502, nothing charged, no result.
	before := b.check(t, "w")
	fail := b.req(t, "POST", "/v1/workspaces/w/ai/section_generation", tok, map[string]any{"prompt": "pricing " + ai.FailMarker}, "Idempotency-Key: f1")
	p := wantProblem(t, fail, http.StatusBadGateway, "operation_failed", "")
	if _, ok := p["result"]; ok {
		t.Fatalf("a failure carried a result: %s", fail.body)
	}
	if after := b.check(t, "w"); after != before {
		t.Fatalf("a failure changed the balance: %+v -> %+v", before, after)
	}

	// Not enough credits: 402, the provider never runs.
	for i := range 7 {
		wantStatus(t, b.req(t, "POST", "/v1/workspaces/w/ai/image_1k", adminKey, map[string]any{"prompt": "x"}, "Idempotency-Key: many"+string(rune('a'+i))), http.StatusOK)
	}
	short := b.req(t, "POST", "/v1/workspaces/w/ai/image_2k", tok, map[string]any{"prompt": "x"}, "Idempotency-Key: big")
	pb := wantProblem(t, short, http.StatusPaymentRequired, "insufficient_credits", "")
	if pb["balance"] != float64(9) || pb["required"] != float64(60) || pb["upgrade"].(map[string]any)["plan"] != "starter" {
		t.Fatalf("402 %s", short.body)
	}

	// Avatar selection is free.
	av := b.req(t, "POST", "/v1/workspaces/w/ai/avatar_selection", tok, map[string]any{"prompt": "calm"}, "Idempotency-Key: a1")
	wantStatus(t, av, http.StatusOK)
	var avr map[string]map[string]any
	json.Unmarshal(av.body, &avr)
	if avr["charge"]["cost"] != float64(0) || avr["result"]["avatar"] == nil {
		t.Fatalf("avatar %s", av.body)
	}

	// Bad input names the field and changes nothing.
	before = b.check(t, "w")
	for _, c := range []struct {
		path, body, key, field string
		status                 int
	}{
		{"/v1/workspaces/w/ai/content_rewrite", `{"prompt":"x"}`, "b1", "text", 400},
		{"/v1/workspaces/w/ai/section_generation", `{"prompt":"` + strings.Repeat("p", ai.MaxPromptChars+1) + `"}`, "b2", "prompt", 400},
		{"/v1/workspaces/w/ai/video", `{"prompt":"x"}`, "b3", "operation", 400},
		{"/v1/workspaces/w/ai/image_1k", `{"prompt":"x","size":"big"}`, "b4", "size", 400},
		{"/v1/workspaces/w/ai/image_1k", `{"prompt":"x"}`, "", "Idempotency-Key", 400},
		{"/v1/workspaces/nope/ai/image_1k", `{"prompt":"x"}`, "b5", "", 404},
	} {
		hdr := "Idempotency-Key: " + c.key
		if c.key == "" {
			hdr = "X-None: 1"
		}
		code := map[int]string{400: "invalid_request", 404: "not_found"}[c.status]
		wantProblem(t, b.req(t, "POST", c.path, adminKey, c.body, hdr), c.status, code, c.field)
	}
	if after := b.check(t, "w"); after != before {
		t.Fatalf("bad input changed the balance")
	}
	// A session token of another workspace, or a read key: forbidden.
	b.createWorkspace(t, "other", "")
	wantProblem(t, b.req(t, "POST", "/v1/workspaces/other/ai/image_1k", tok, map[string]any{"prompt": "x"}, "Idempotency-Key: z"), 403, "forbidden", "")
	wantProblem(t, b.req(t, "POST", "/v1/workspaces/w/ai/image_1k", b.apiKey(t, "read"), map[string]any{"prompt": "x"}, "Idempotency-Key: z"), 403, "forbidden", "")
}

// A provider slower than the deadline: 502 and the hold released.
func TestAITimeout(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{Provider: ai.Demo{Delay: 10 * time.Second}, AITimeout: 50 * time.Millisecond})
	b := &testBundle{url: srv.URL, clock: srv.Clock, engine: srv.Engine, store: srv.Store, auth: srv.Auth, client: http.DefaultClient}
	b.createWorkspace(t, "w", "")
	wantProblem(t, b.req(t, "POST", "/v1/workspaces/w/ai/image_1k", adminKey, map[string]any{"prompt": "x"}, "Idempotency-Key: k"), http.StatusBadGateway, "operation_failed", "")
	bal, err := srv.Engine.Balance(context.Background(), "w")
	if err != nil || bal.Available != 250 || bal.Held != 0 {
		t.Fatalf("balance %+v %v", bal, err)
	}
}
