-- Migration 5: fewer index entries and row locks per charge.
--
-- The sweeper finds expired holds through charges_ws_held, which holds only
-- the held charges (a few, however many charges exist), so the second index
-- on their expiry only cost each hold an index entry.
DROP INDEX IF EXISTS charges_held;
-- Each charge and ledger row checked its workspace with a key-share lock on
-- the workspace's row: a lock written per row, on the hottest rows there
-- are. The writer inserts them only in a batch that has locked and read that
-- workspace, and `credits verify` checks that every charge's workspace
-- exists; cycles keep their foreign key.
ALTER TABLE charges DROP CONSTRAINT IF EXISTS charges_workspace_id_fkey;
ALTER TABLE entries DROP CONSTRAINT IF EXISTS entries_workspace_id_fkey;
