package auth

import (
	"sync"
	"time"
)

// keyCacheTTL is how long a looked-up API key is trusted without asking the
// store again. Every request would otherwise read the store once just to
// authenticate; the price is that a key revoked on another instance keeps
// working there for up to this long (on the revoking instance it stops at
// once).
const keyCacheTTL = 2 * time.Second

// maxCachedKeys bounds the cache; past it, it starts over.
const maxCachedKeys = 10_000

// keyCache remembers API keys by their secret's hash.
type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	key APIKey
	at  time.Time
}

func (c *keyCache) get(hash string, now time.Time) (APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || now.Sub(e.at) >= keyCacheTTL || now.Before(e.at) {
		return APIKey{}, false
	}
	return e.key, true
}

func (c *keyCache) put(hash string, k APIKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[string]cachedKey)
	}
	c.m[hash] = cachedKey{key: k, at: now}
}

// forget drops a key (by id) at once: it was revoked here.
func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.m {
		if e.key.ID == id {
			delete(c.m, h)
		}
	}
}
