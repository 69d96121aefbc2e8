-- Migration 6: each workspace's ledger as a chain instead of an index.
-- An index on (workspace_id, seq) took every new entry on its workspace's
-- last page: with thousands of busy workspaces, one page written (and
-- checkpointed) per entry. Now each entry names the workspace's entry
-- before it (prev_seq, 0 for the first) and ledger_heads holds each
-- workspace's newest: the entries table is only appended to, and a ledger
-- page is read by following the chain from the head or a cursor.
DROP TRIGGER entries_no_update;
DROP TRIGGER entries_no_delete;
ALTER TABLE entries ADD COLUMN prev_seq INTEGER NOT NULL DEFAULT 0 CHECK (prev_seq >= 0);
UPDATE entries SET prev_seq = COALESCE(
  (SELECT MAX(p.seq) FROM entries p WHERE p.workspace_id = entries.workspace_id AND p.seq < entries.seq), 0);
CREATE TABLE ledger_heads (
  workspace_id TEXT PRIMARY KEY,
  seq          INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO ledger_heads (workspace_id, seq) SELECT workspace_id, MAX(seq) FROM entries GROUP BY workspace_id;
DROP INDEX entries_ws;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are never changed'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted'); END;
