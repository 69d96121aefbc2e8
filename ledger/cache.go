package ledger

import (
	"sync"

	"github.com/credits-dev/credits"
)

// SingleWriter is a Store whose only writer is this process (SQLite). The
// engine then keeps what it committed in memory: the accounts it touched and
// the holds it made, so a batch reads nothing it already knows. The cache is
// filled only after a commit, so it is never ahead of the store.
type SingleWriter interface {
	SingleWriter() bool
}

// cache holds committed accounts and held charges, each bounded: past the
// bound an arbitrary eighth is dropped (Go's map order is random enough to
// spread the evictions), so memory stays flat however many workspaces exist.
type cache struct {
	mu          sync.Mutex
	accounts    map[string]Account
	held        map[string]credits.Charge
	maxAccounts int
	maxHeld     int
}

func newCache(maxAccounts, maxHeld int) *cache {
	return &cache{
		accounts:    make(map[string]Account),
		held:        make(map[string]credits.Charge),
		maxAccounts: maxAccounts,
		maxHeld:     maxHeld,
	}
}

func (c *cache) account(id string) (Account, bool) {
	c.mu.Lock()
	a, ok := c.accounts[id]
	c.mu.Unlock()
	return a, ok
}

func (c *cache) charge(id string) (credits.Charge, bool) {
	c.mu.Lock()
	ch, ok := c.held[id]
	c.mu.Unlock()
	return ch, ok
}

// committed records a batch's state after its commit.
func (c *cache) committed(s *state) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, a := range s.accounts {
		if len(c.accounts) >= c.maxAccounts {
			Evict(c.accounts, c.maxAccounts/8+1)
		}
		c.accounts[id] = *a
	}
	for id := range s.dirtyCharges {
		ch := s.charges[id]
		if ch.Status != credits.StatusHeld {
			delete(c.held, id)
			continue
		}
		if len(c.held) >= c.maxHeld {
			Evict(c.held, c.maxHeld/8+1)
		}
		c.held[id] = *ch
	}
}

// forget drops what a failed batch touched: its rows are as before the
// batch, which the cache may or may not know.
func (c *cache) forget(s *state) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range s.accounts {
		delete(c.accounts, id)
	}
	for id := range s.charges {
		delete(c.held, id)
	}
}

// Evict deletes n arbitrary entries of m (all, if it has fewer): a cache
// past its bound lets go of some at random (Go's map order is random enough
// to spread it), so its memory stays flat. The stores' own caches use it too.
func Evict[V any](m map[string]V, n int) {
	for k := range m {
		if n == 0 {
			return
		}
		delete(m, k)
		n--
	}
}
