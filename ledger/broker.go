package ledger

import (
	"sync"
	"time"

	"github.com/credits-dev/credits"
)

// broker fans committed balances out to subscribers of a workspace. A slow
// subscriber never blocks the writer: its channel holds one balance and a
// newer one replaces it.
//
// A busy workspace changes a thousand times a second, and a fan-out to
// thousands of open streams wakes each of them: so a workspace fans out at
// most once every fanoutEvery. The first change after a quiet spell goes out
// at once; the changes within the next fanoutEvery wait and go out together
// as the newest balance, so every subscriber still gets the final balance
// and never an older one after a newer.
type broker struct {
	mu     sync.Mutex
	topics map[string]*topic
	every  time.Duration
}

type topic struct {
	subs    map[chan credits.Balance]struct{}
	latest  credits.Balance
	last    time.Time // the last fan-out
	pending bool      // a fan-out of latest is scheduled
}

// fanoutEvery bounds how often one workspace's subscribers are woken. The
// HTTP streams fold bursts much further (500 ms by default), so it adds no
// latency a stream's reader could see.
const fanoutEvery = 100 * time.Millisecond

func newBroker() *broker {
	return &broker{topics: map[string]*topic{}, every: fanoutEvery}
}

func (b *broker) subscribe(ws string) (<-chan credits.Balance, func()) {
	ch := make(chan credits.Balance, 1)
	b.mu.Lock()
	t := b.topics[ws]
	if t == nil {
		t = &topic{subs: map[chan credits.Balance]struct{}{}}
		b.topics[ws] = t
	}
	t.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(t.subs, ch)
			if len(t.subs) == 0 && b.topics[ws] == t {
				delete(b.topics, ws)
			}
			b.mu.Unlock()
		})
	}
}

// Subscribers counts open subscriptions on a workspace.
func (e *Engine) Subscribers(ws string) int {
	e.broker.mu.Lock()
	defer e.broker.mu.Unlock()
	if t := e.broker.topics[ws]; t != nil {
		return len(t.subs)
	}
	return 0
}

func (b *broker) publish(bal credits.Balance) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[bal.WorkspaceID]
	if t == nil {
		return
	}
	t.latest = bal
	if t.pending {
		return // the scheduled fan-out will carry it
	}
	wait := b.every - time.Since(t.last)
	if wait <= 0 {
		t.fanout()
		return
	}
	t.pending = true
	time.AfterFunc(wait, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		t.pending = false
		t.fanout()
	})
}

// fanout sends the newest balance to every subscriber; b.mu is held.
func (t *topic) fanout() {
	t.last = time.Now()
	for ch := range t.subs {
		select {
		case ch <- t.latest:
		default:
			// Drop the stale balance the reader has not taken, keep the new.
			select {
			case <-ch:
			default:
			}
			ch <- t.latest
		}
	}
}
