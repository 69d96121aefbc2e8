package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/credits-dev/credits/ai"
)

var _ ai.RequestStore = (*Store)(nil)

// ClaimRequest starts an attempt of an AI request (see ai.RequestStore).
func (s *Store) ClaimRequest(ctx context.Context, ws, key, fp string, now, staleBefore time.Time) (ai.RequestRecord, bool, error) {
	r := ai.RequestRecord{WorkspaceID: ws, Key: key, Fingerprint: fp}
	var charge sql.NullString
	var created, updated int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO ai_requests (workspace_id, key, fingerprint, attempt, status, created_at, updated_at) VALUES (?, ?, ?, 1, 'running', ?, ?)
		ON CONFLICT (workspace_id, key) DO UPDATE SET
		  attempt = CASE WHEN ai_requests.status = 'capturing' THEN ai_requests.attempt ELSE ai_requests.attempt + 1 END,
		  status = CASE WHEN ai_requests.status = 'capturing' THEN 'capturing' ELSE 'running' END,
		  updated_at = excluded.updated_at
		WHERE ai_requests.fingerprint = excluded.fingerprint
		  AND (ai_requests.status = 'failed' OR (ai_requests.status IN ('running', 'capturing') AND ai_requests.updated_at < ?))
		RETURNING attempt, status, charge_id, result, created_at, updated_at`,
		ws, key, fp, micros(now), micros(now), micros(staleBefore)).Scan(&r.Attempt, &r.Status, &charge, &r.Result, &created, &updated)
	if err == nil {
		r.ChargeID, r.CreatedAt, r.UpdatedAt = charge.String, fromMicros(created), fromMicros(updated)
		return r, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return r, false, err
	}
	err = s.w.QueryRowContext(ctx, `SELECT fingerprint, attempt, status, charge_id, result, response, created_at, updated_at FROM ai_requests WHERE workspace_id = ? AND key = ?`, ws, key).
		Scan(&r.Fingerprint, &r.Attempt, &r.Status, &charge, &r.Result, &r.Response, &created, &updated)
	r.ChargeID, r.CreatedAt, r.UpdatedAt = charge.String, fromMicros(created), fromMicros(updated)
	return r, false, err
}

// SaveRequest updates an attempt of an AI request.
func (s *Store) SaveRequest(ctx context.Context, r ai.RequestRecord) error {
	_, err := s.w.ExecContext(ctx, `UPDATE ai_requests SET status = ?, charge_id = ?, result = ?, response = ?, updated_at = ? WHERE workspace_id = ? AND key = ? AND attempt = ?`,
		r.Status, emptyNull(r.ChargeID), r.Result, r.Response, micros(r.UpdatedAt), r.WorkspaceID, r.Key, r.Attempt)
	return err
}
