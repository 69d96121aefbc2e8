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
	// RevokedAt is when the key was revoked (DELETE /v1/api-keys/{id});
	// nil while it is valid.
	RevokedAt *time.Time `json:"revoked_at"`
	Hash      string     `json:"-"`
}

// Store keeps API keys and the server's settings (the admin key's hash, the
// session-token signing secret). Both stores implement it.
type Store interface {
	// PutSettingIfAbsent stores value unless the key is set, and returns
	// the value that is stored: one instance's choice wins for all.
	PutSettingIfAbsent(ctx context.Context, key, value string) (string, error)
	CreateAPIKey(ctx context.Context, k APIKey) error
	// LookupAPIKey returns the key whose secret hashes to hash, revoked or
	// not (RevokedAt says), or an error with code not_found.
	LookupAPIKey(ctx context.Context, hash string) (APIKey, error)
	// ListAPIKeys lists every key, revoked ones included, oldest first.
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	// RevokeAPIKey sets a key's RevokedAt to at unless it is set, and
	// returns the key as stored; an unknown id is not_found.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) (APIKey, error)
}
