-- Migration 4: the index that finds expired idempotency keys is a BRIN index.
-- It serves one DELETE an hour (keys are appended in created_at order), and a
-- b-tree cost every hold an index entry and its WAL record.
DROP INDEX idempotency_created;
CREATE INDEX idempotency_created ON idempotency USING brin (created_at);
