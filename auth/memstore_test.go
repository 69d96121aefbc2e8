package auth

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/credits-dev/credits"
)

// memStore is an in-memory Store for the package's tests.
type memStore struct {
	mu       sync.Mutex
	settings map[string]string
	keys     map[string]APIKey // by id
}

func newMemStore() *memStore {
	return &memStore{settings: map[string]string{}, keys: map[string]APIKey{}}
}

func (m *memStore) PutSettingIfAbsent(_ context.Context, key, value string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.settings[key]; ok {
		return v, nil
	}
	m.settings[key] = value
	return value, nil
}

func (m *memStore) CreateAPIKey(_ context.Context, k APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[k.ID] = k
	return nil
}

func (m *memStore) LookupAPIKey(_ context.Context, hash string) (APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.Hash == hash {
			return k, nil
		}
	}
	return APIKey{}, credits.NotFound("api key", "")
}

func (m *memStore) ListAPIKeys(context.Context) ([]APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []APIKey
	for _, k := range m.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) RevokeAPIKey(_ context.Context, id string, at time.Time) (APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return APIKey{}, credits.NotFound("api key", id)
	}
	if k.RevokedAt == nil {
		k.RevokedAt = &at
		m.keys[id] = k
	}
	return k, nil
}

// clock is a settable NowFunc.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
