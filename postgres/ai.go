package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits/ai"
)

var _ ai.RequestStore = (*Store)(nil)

// ClaimRequest starts an attempt of an AI request (see ai.RequestStore). The
// upsert is one statement: two instances never claim one attempt.
func (s *Store) ClaimRequest(ctx context.Context, ws, key, fp string, now, staleBefore time.Time) (ai.RequestRecord, bool, error) {
	r := ai.RequestRecord{WorkspaceID: ws, Key: key, Fingerprint: fp}
	var charge *string
	err := s.pool.QueryRow(ctx, `INSERT INTO ai_requests (workspace_id, key, fingerprint, attempt, status, created_at, updated_at) VALUES ($1, $2, $3, 1, 'running', $4, $4)
		ON CONFLICT (workspace_id, key) DO UPDATE SET
		  attempt = CASE WHEN ai_requests.status = 'capturing' THEN ai_requests.attempt ELSE ai_requests.attempt + 1 END,
		  status = CASE WHEN ai_requests.status = 'capturing' THEN 'capturing' ELSE 'running' END,
		  updated_at = excluded.updated_at
		WHERE ai_requests.fingerprint = excluded.fingerprint
		  AND (ai_requests.status = 'failed' OR (ai_requests.status IN ('running', 'capturing') AND ai_requests.updated_at < $5))
		RETURNING attempt, status, charge_id, result, created_at, updated_at`,
		ws, key, fp, now, staleBefore).Scan(&r.Attempt, &r.Status, &charge, &r.Result, &r.CreatedAt, &r.UpdatedAt)
	if err == nil {
		r.ChargeID, r.CreatedAt, r.UpdatedAt = deref(charge), utc(r.CreatedAt), utc(r.UpdatedAt)
		return r, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return r, false, err
	}
	err = s.pool.QueryRow(ctx, `SELECT fingerprint, attempt, status, charge_id, result, response, created_at, updated_at FROM ai_requests WHERE workspace_id = $1 AND key = $2`, ws, key).
		Scan(&r.Fingerprint, &r.Attempt, &r.Status, &charge, &r.Result, &r.Response, &r.CreatedAt, &r.UpdatedAt)
	r.ChargeID, r.CreatedAt, r.UpdatedAt = deref(charge), utc(r.CreatedAt), utc(r.UpdatedAt)
	return r, false, err
}

// SaveRequest updates an attempt of an AI request.
func (s *Store) SaveRequest(ctx context.Context, r ai.RequestRecord) error {
	_, err := s.pool.Exec(ctx, `UPDATE ai_requests SET status = $1, charge_id = $2, result = $3, response = $4, updated_at = $5 WHERE workspace_id = $6 AND key = $7 AND attempt = $8`,
		r.Status, nullText(r.ChargeID), r.Result, r.Response, r.UpdatedAt, r.WorkspaceID, r.Key, r.Attempt)
	return err
}
