-- Migration 7: idempotency keys found by a 64-bit hash, and answers kept
-- small. A unique index on (workspace_id, key) took each new key on a page
-- of its own (keys are random); the hash's index is a quarter of its size,
-- so a batch of new keys shares pages. The hash is FNV-1a of the workspace
-- id, a zero byte and the key (Go fills it in for the rows copied here,
-- right after this). A lookup compares the workspace and key too, and takes
-- the newest row: a key used again after its lifetime is a new row, and the
-- old one is deleted with the other expired keys. The answer is binary for
-- a hold (see appendAnswer) and JSON otherwise, as all of them were before;
-- charge_id is the charge it names, for credits verify.
CREATE TABLE idempotency_v7 (
  seq          INTEGER PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  key          TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  hash         INTEGER NOT NULL,
  charge_id    TEXT,
  answer       BLOB NOT NULL
) STRICT;
INSERT INTO idempotency_v7 (seq, workspace_id, key, fingerprint, created_at, hash, charge_id, answer)
  SELECT seq, workspace_id, key, fingerprint, created_at, 0, json_extract(result, '$.charge.id'), CAST(result AS BLOB) FROM idempotency;
DROP TABLE idempotency;
ALTER TABLE idempotency_v7 RENAME TO idempotency;
CREATE INDEX idempotency_hash ON idempotency (hash);
CREATE INDEX idempotency_created ON idempotency (created_at);
