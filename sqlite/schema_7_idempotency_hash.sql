-- Migration 7: idempotency keys found by a 64-bit hash. A unique index on
-- (workspace_id, key) took each new key on a page of its own (keys are
-- random); the hash's index is a quarter of its size, so a batch of new
-- keys shares pages. The hash is FNV-1a of the workspace id, a zero byte
-- and the key (Go fills it in for the existing rows, right after this).
-- A lookup compares the workspace and key too, and takes the newest row: a
-- key used again after its lifetime is a new row, and the old one is
-- deleted with the other expired keys.
ALTER TABLE idempotency ADD COLUMN hash INTEGER NOT NULL DEFAULT 0;
DROP INDEX idempotency_key;
CREATE INDEX idempotency_hash ON idempotency (hash);
