package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
)

const apiKeyColumns = `id, name, scope, hash, created_at, revoked_at`

// scanAPIKey reads one row of apiKeyColumns.
func scanAPIKey(row pgx.Row) (auth.APIKey, error) {
	var k auth.APIKey
	var revoked *time.Time
	if err := row.Scan(&k.ID, &k.Name, &k.Scope, &k.Hash, &k.CreatedAt, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt = utc(k.CreatedAt)
	if revoked != nil {
		t := utc(*revoked)
		k.RevokedAt = &t
	}
	return k, nil
}

// LookupAPIKey finds an API key, revoked or not, by its secret's hash.
func (s *Store) LookupAPIKey(ctx context.Context, hash string) (auth.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.APIKey{}, credits.NotFound("api key", "")
	}
	return k, err
}

// ListAPIKeys lists API keys, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]auth.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
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
	k, err := scanAPIKey(s.pool.QueryRow(ctx,
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING `+apiKeyColumns, at, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.APIKey{}, credits.NotFound("api key", id)
	}
	return k, err
}
