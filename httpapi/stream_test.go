package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Many changes in a burst reach a stream as fewer events, the last of them
// the final balance.
func TestStreamCoalesces(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "pro")
	s := b.stream(t, "/v1/workspaces/w/balance/stream", "Bearer "+adminKey)
	first := s.next(t)
	if !strings.Contains(strings.Join(first, "\n"), `"available":5000`) {
		t.Fatalf("first event %q", first)
	}
	const n = 40
	for i := range n {
		r := b.req(t, "POST", "/v1/workspaces/w/charges", adminKey, map[string]any{"operation": "content_rewrite", "capture": true}, fmt.Sprintf("Idempotency-Key: k%d", i))
		wantStatus(t, r, 201)
	}
	events := 0
	for {
		lines := s.next(t)
		if lines[0] != "event: balance" {
			continue // a keep-alive comment
		}
		events++
		var bal struct{ Available int64 }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &bal); err != nil {
			t.Fatal(err)
		}
		if bal.Available == 5000-n {
			break
		}
	}
	if events >= n {
		t.Fatalf("%d events for %d changes: nothing was folded", events, n)
	}
}
