package auth

import (
	"context"
	"time"
)

// APIKey is a stored API key. Only the hash of its secret is kept.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	Hash      string    `json:"-"`
}

// Store keeps API keys and the server's settings (the admin key's hash, the
// session-token signing secret). Both stores implement it.
type Store interface {
	// Setting returns a setting's value; ok is false when it is unset.
	Setting(ctx context.Context, key string) (value string, ok bool, err error)
	// PutSettingIfAbsent stores value unless the key is set, and returns
	// the value that is stored: one instance's choice wins for all.
	PutSettingIfAbsent(ctx context.Context, key, value string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
	CreateAPIKey(ctx context.Context, k APIKey) error
	// APIKeyByHash returns the key whose secret hashes to hash, or an
	// error with code not_found.
	APIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	APIKeys(ctx context.Context) ([]APIKey, error)
}
