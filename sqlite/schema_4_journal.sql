-- Migration 4: the journal's high-water mark. Batches are acknowledged once
-- they are in the journal (a file next to this one) and copied into the
-- tables behind it; materialized is the last batch the tables hold, written
-- in the same transaction as its rows, so replay starts right after it.
CREATE TABLE journal_state (
  materialized INTEGER NOT NULL CHECK (materialized >= 0)
) STRICT;
INSERT INTO journal_state (materialized) VALUES (0);
