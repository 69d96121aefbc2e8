package sqlite

import (
	"context"

	"github.com/credits-dev/credits/auth"
)

// PutSettingIfAbsent stores a setting unless it is set and returns the stored
// value.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return "", err
	}
	var v string
	err := s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	return v, err
}

// CreateAPIKey stores an API key (its secret's hash only).
func (s *Store) CreateAPIKey(ctx context.Context, k auth.APIKey) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_keys (id, name, scope, hash, created_at) VALUES (?,?,?,?,?)`, k.ID, k.Name, k.Scope, k.Hash, micros(k.CreatedAt))
	return err
}
