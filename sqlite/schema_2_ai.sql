-- Migration 2: AI requests, one per workspace and Idempotency-Key, so a retry
-- after a success gets the same answer and a retry after a failure runs again.
CREATE TABLE ai_requests (
  workspace_id TEXT NOT NULL,
  key          TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  attempt      INTEGER NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('running', 'failed', 'capturing', 'succeeded')),
  charge_id    TEXT,
  result       BLOB,
  response     BLOB,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX ai_requests_created ON ai_requests (created_at);
