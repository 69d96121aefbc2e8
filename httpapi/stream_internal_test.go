package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// The cache gives every stream of a workspace the one encoding of a
// balance, a new one when the balance changes, and the right event even
// when two workspaces share a slot.
func TestEventCache(t *testing.T) {
	t.Parallel()
	c := newEventCache()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	bal := func(ws string, used int64) credits.Balance {
		return credits.Balance{WorkspaceID: ws, Plan: "free", MonthlyCredits: 250, Granted: 250, Available: 250 - used, Used: used,
			CycleStart: start, CycleEnd: start.AddDate(0, 1, 0)}
	}
	check := func(ev []byte, want credits.Balance) {
		t.Helper()
		data, ok := strings.CutPrefix(string(ev), "event: balance\ndata: ")
		if !ok || !strings.HasSuffix(data, "\n\n") {
			t.Fatalf("event %q is not one balance event", ev)
		}
		wantJSON, _ := json.Marshal(want)
		if got := strings.TrimSuffix(data, "\n\n"); got != string(wantJSON) {
			t.Fatalf("event data %s, want %s", got, wantJSON)
		}
	}

	a1 := c.event(bal("ws_a", 1))
	check(a1, bal("ws_a", 1))
	if again := c.event(bal("ws_a", 1)); &again[0] != &a1[0] {
		t.Error("the same balance was encoded twice")
	}
	a2 := c.event(bal("ws_a", 2))
	check(a2, bal("ws_a", 2))
	check(a1, bal("ws_a", 1)) // an event handed out is never changed

	// More workspaces than slots: some share one, and each still gets
	// its own balance.
	for round := range 2 {
		for i := range 2 * len(c.slots) {
			ws := fmt.Sprintf("ws_%d", i)
			check(c.event(bal(ws, int64(i+round))), bal(ws, int64(i+round)))
		}
	}
}
