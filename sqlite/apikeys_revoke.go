package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
)

// Migration 3 adds api_keys.revoked_at.
//
//go:embed schema_3_apikeys_revoked.sql
var schemaV3 string

const apiKeyColumns = `id, name, scope, hash, created_at, revoked_at`

// scanAPIKey reads one row of apiKeyColumns.
func scanAPIKey(row interface{ Scan(...any) error }) (auth.APIKey, error) {
	var k auth.APIKey
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.Name, &k.Scope, &k.Hash, &created, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt = fromMicros(created)
	if revoked.Valid {
		t := fromMicros(revoked.Int64)
		k.RevokedAt = &t
	}
	return k, nil
}

// LookupAPIKey finds an API key, revoked or not, by its secret's hash.
func (s *Store) LookupAPIKey(ctx context.Context, hash string) (auth.APIKey, error) {
	k, err := scanAPIKey(s.r.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.APIKey{}, credits.NotFound("api key", "")
	}
	return k, err
}

// ListAPIKeys lists API keys, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]auth.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey marks a key revoked at at, unless it already is, and returns
// it as stored.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) (auth.APIKey, error) {
	k, err := scanAPIKey(s.w.QueryRowContext(ctx,
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING `+apiKeyColumns, micros(at), id))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.APIKey{}, credits.NotFound("api key", id)
	}
	return k, err
}
