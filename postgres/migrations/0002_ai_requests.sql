-- Migration 2: AI requests, one per workspace and Idempotency-Key, so a retry
-- after a success gets the same answer and a retry after a failure runs again.
CREATE TABLE ai_requests (
  workspace_id text NOT NULL,
  key          text NOT NULL,
  fingerprint  text NOT NULL,
  attempt      integer NOT NULL,
  status       text NOT NULL CHECK (status IN ('running', 'failed', 'capturing', 'succeeded')),
  charge_id    text,
  result       bytea,
  response     bytea,
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL,
  PRIMARY KEY (workspace_id, key)
);
CREATE INDEX ai_requests_created ON ai_requests (created_at);
