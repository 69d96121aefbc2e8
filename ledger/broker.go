package ledger

import (
	"sync"

	"github.com/credits-dev/credits"
)

// broker fans committed balances out to subscribers of a workspace. A slow
// subscriber never blocks the writer: its channel holds one balance and a
// newer one replaces it.
type broker struct {
	mu   sync.Mutex
	subs map[string]map[chan credits.Balance]struct{}
}

func newBroker() *broker {
	return &broker{subs: map[string]map[chan credits.Balance]struct{}{}}
}

func (b *broker) subscribe(ws string) (<-chan credits.Balance, func()) {
	ch := make(chan credits.Balance, 1)
	b.mu.Lock()
	if b.subs[ws] == nil {
		b.subs[ws] = map[chan credits.Balance]struct{}{}
	}
	b.subs[ws][ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs[ws], ch)
			if len(b.subs[ws]) == 0 {
				delete(b.subs, ws)
			}
			b.mu.Unlock()
		})
	}
}

// Subscribers counts open subscriptions on a workspace.
func (e *Engine) Subscribers(ws string) int {
	e.broker.mu.Lock()
	defer e.broker.mu.Unlock()
	return len(e.broker.subs[ws])
}

func (b *broker) publish(bal credits.Balance) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[bal.WorkspaceID] {
		select {
		case ch <- bal:
		default:
			// Drop the stale balance the reader has not taken, keep the new.
			select {
			case <-ch:
			default:
			}
			ch <- bal
		}
	}
}
