package ledger

import (
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// A burst of changes reaches a subscriber as a few balances, newest last,
// never going back; a change after a quiet spell goes out at once.
func TestBrokerFoldsBursts(t *testing.T) {
	b := newBroker()
	ch, cancel := b.subscribe("w")
	defer cancel()
	got := make(chan []int64)
	go func() {
		var seen []int64
		timeout := time.After(5 * time.Second)
		for {
			select {
			case bal := <-ch:
				seen = append(seen, bal.Used)
				if bal.Used == 1000 {
					got <- seen
					return
				}
			case <-timeout:
				got <- seen
				return
			}
		}
	}()
	start := time.Now()
	for i := int64(1); i <= 1000; i++ {
		b.publish(credits.Balance{WorkspaceID: "w", Used: i})
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	burst := time.Since(start)
	seen := <-got
	if len(seen) == 0 || seen[len(seen)-1] != 1000 {
		t.Fatalf("the final balance did not arrive: %v", seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("balance went back: %v", seen)
		}
	}
	// One fan-out at the start, then at most one per fanoutEvery, and the
	// trailing one.
	if max := int(burst/fanoutEvery) + 3; len(seen) > max {
		t.Fatalf("%d balances for a %v burst, want at most %d", len(seen), burst, max)
	}

	// After a quiet spell a change goes out without waiting.
	time.Sleep(2 * fanoutEvery)
	sent := time.Now()
	b.publish(credits.Balance{WorkspaceID: "w", Used: 1001})
	select {
	case bal := <-ch:
		if bal.Used != 1001 || time.Since(sent) > fanoutEvery/2 {
			t.Fatalf("got %d after %v", bal.Used, time.Since(sent))
		}
	case <-time.After(time.Second):
		t.Fatal("a lone change did not arrive")
	}
}

// Publishing to a workspace nobody follows, and unsubscribing with a
// fan-out pending, are harmless.
func TestBrokerUnsubscribed(t *testing.T) {
	b := newBroker()
	b.publish(credits.Balance{WorkspaceID: "nobody"})
	ch, cancel := b.subscribe("w")
	b.publish(credits.Balance{WorkspaceID: "w", Used: 1})
	b.publish(credits.Balance{WorkspaceID: "w", Used: 2}) // scheduled
	cancel()
	cancel()
	time.Sleep(2 * fanoutEvery)
	if bal := <-ch; bal.Used != 1 {
		t.Fatalf("got %d", bal.Used)
	}
	if n := len(b.topics); n != 0 {
		t.Fatalf("%d topics left", n)
	}
}
