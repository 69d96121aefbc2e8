package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits/httpapi"
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

// A workspace's streams share StreamEvents a second: with five streams and
// a budget of ten events a second, each waits half a second between
// events however short StreamInterval is, and still ends on the final
// balance; without a bound each gets the folds StreamInterval allows.
func TestStreamsShareAnEventBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events int
	}{
		{"bounded", 10},
		{"unbounded", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _ := limitedServer(t, httpapi.Config{StreamInterval: 20 * time.Millisecond, StreamEvents: tc.events}, nil)
			b.createWorkspace(t, "w", "pro")
			var streams []streamResp
			for range 5 {
				s := b.stream(t, "/v1/workspaces/w/balance/stream", "Bearer "+adminKey)
				s.next(t) // the balance at connect
				streams = append(streams, s)
			}
			type event struct {
				at        time.Time
				available int64
			}
			got := make(chan event, 1000)
			go func() {
				for {
					line, err := streams[0].events.ReadString('\n')
					if err != nil {
						close(got)
						return
					}
					if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
						var bal struct{ Available int64 }
						if json.Unmarshal([]byte(data), &bal) == nil {
							got <- event{time.Now(), bal.Available}
						}
					}
				}
			}()
			start := time.Now()
			n := 0
			for time.Since(start) < 1500*time.Millisecond {
				r := b.req(t, "POST", "/v1/workspaces/w/charges", adminKey, map[string]any{"operation": "content_rewrite", "capture": true}, fmt.Sprintf("Idempotency-Key: k%d", n))
				wantStatus(t, r, 201)
				n++
			}
			var events []event
			for e := range got {
				events = append(events, e)
				if e.available == 5000-int64(n) {
					break
				}
			}
			if len(events) == 0 || events[len(events)-1].available != 5000-int64(n) {
				t.Fatalf("the stream ended without the final balance (%d charges): %v", n, events)
			}
			if tc.events > 0 {
				// 5 streams / 10 a second: 500 ms each; a delivery
				// delayed on the way may narrow one gap a little.
				for i := 1; i < len(events); i++ {
					if gap := events[i].at.Sub(events[i-1].at); gap < 400*time.Millisecond {
						t.Errorf("events %d and %d came %v apart, want about 500 ms", i-1, i, gap)
					}
				}
			} else if len(events) < 6 {
				t.Errorf("without a bound, %d events in 1.5 s of charges", len(events))
			}
		})
	}
}
