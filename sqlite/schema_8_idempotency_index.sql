-- Migration 8: idempotency keys' hash index as a table written in sorted
-- runs (see idemtail.go). SQLite kept idempotency_hash up row by row, and
-- random keys took each new one on a page of its own. idempotency_index holds
-- (hash, seq) of every row up to journal_state.indexed; the newer rows are
-- found through memory until a window copies them in, in hash order.
CREATE TABLE idempotency_index (
  hash INTEGER NOT NULL,
  seq  INTEGER NOT NULL,
  PRIMARY KEY (hash, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO idempotency_index (hash, seq) SELECT hash, seq FROM idempotency ORDER BY hash, seq;
DROP INDEX idempotency_hash;
ALTER TABLE journal_state ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0 CHECK (indexed >= 0);
UPDATE journal_state SET indexed = (SELECT COALESCE(MAX(seq), 0) FROM idempotency);
