-- Migration 3: API keys can be revoked (DELETE /v1/api-keys/{id}); a revoked
-- key's secret is refused. NULL while the key is valid; microseconds since
-- the epoch, like every time in this schema.
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
