package ledger

import (
	"testing"
	"time"
)

// A reading counts a batch under way up to that moment, and the batch's
// whole time once it ends: two readings never differ by more than the time
// between them, however long a batch straddling the first one took.
func TestBusyClockCountsTheBatchUnderWay(t *testing.T) {
	t.Parallel()
	var c busyClock
	if got := c.read(); got != 0 {
		t.Fatalf("an idle clock reads %v", got)
	}
	c.begin()
	time.Sleep(30 * time.Millisecond)
	at := time.Now()
	first := c.read()
	if first < 30*time.Millisecond {
		t.Errorf("30 ms into a batch the clock reads %v", first)
	}
	time.Sleep(10 * time.Millisecond)
	c.end()
	done := c.read()
	if d, between := done-first, time.Since(at); d <= 0 || d > between {
		t.Errorf("the clock moved %v in %v", d, between)
	}
	time.Sleep(10 * time.Millisecond)
	if got := c.read(); got != done {
		t.Errorf("between batches the clock moved from %v to %v", done, got)
	}
}
