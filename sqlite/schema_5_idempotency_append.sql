-- Migration 5: idempotency rows in the order they are written. Keys are
-- random strings, so a table ordered by them takes each new row on a page of
-- its own once it is large: one page written (and checkpointed) per hold.
-- Appended in rowid order instead, rows share pages, and only the small
-- unique index on the key is written out of order.
CREATE TABLE idempotency_v5 (
  seq          INTEGER PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  key          TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  result       TEXT NOT NULL
) STRICT;
INSERT INTO idempotency_v5 (workspace_id, key, fingerprint, created_at, result)
  SELECT workspace_id, key, fingerprint, created_at, result FROM idempotency ORDER BY created_at;
DROP TABLE idempotency;
ALTER TABLE idempotency_v5 RENAME TO idempotency;
CREATE UNIQUE INDEX idempotency_key ON idempotency (workspace_id, key);
CREATE INDEX idempotency_created ON idempotency (created_at);
