-- Migration 6: keys compare byte by byte, and stored answers are not parsed.
--
-- Ids and idempotency keys are compared in every index lookup and insert of
-- a charge. Under a locale's collation (the database's default) each
-- comparison is a strcoll; ids and keys are opaque, so their order need only
-- be stable, and "C" makes it the bytes' (SQLite's order, and the order
-- credits verify reads in). Each ALTER rewrites its table and its indexes,
-- under a lock that stops the writers until it is done.
ALTER TABLE cycles DROP CONSTRAINT IF EXISTS cycles_workspace_id_fkey;
ALTER TABLE workspaces ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE cycles ALTER COLUMN workspace_id TYPE text COLLATE "C";
ALTER TABLE cycles ADD CONSTRAINT cycles_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces (id);
ALTER TABLE charges ALTER COLUMN id TYPE text COLLATE "C", ALTER COLUMN workspace_id TYPE text COLLATE "C";
ALTER TABLE entries ALTER COLUMN workspace_id TYPE text COLLATE "C", ALTER COLUMN charge_id TYPE text COLLATE "C";
ALTER TABLE ai_requests ALTER COLUMN workspace_id TYPE text COLLATE "C", ALTER COLUMN key TYPE text COLLATE "C";
-- The first answer to an idempotency key is written with each hold and read
-- back whole, never searched: as text it is stored as it comes, where jsonb
-- parsed every answer (jsonb_in was 2.2% of the machine's CPU in a profile
-- of credits bench engine/postgres/many, 4% of the server's).
ALTER TABLE idempotency ALTER COLUMN workspace_id TYPE text COLLATE "C", ALTER COLUMN key TYPE text COLLATE "C",
  ALTER COLUMN result TYPE text USING result::text;
