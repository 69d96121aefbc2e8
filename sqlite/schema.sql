-- Migration 1: the credits schema. Times are Unix microseconds (UTC); money is
-- INTEGER credits. Tables keyed by text are WITHOUT ROWID: one b-tree each
-- instead of a table and its key index, so a charge costs fewer page writes. CHECK constraints are the last guard of the invariants: a
-- batch that would break one fails whole.
CREATE TABLE workspaces (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  plan         TEXT NOT NULL,
  pending_plan TEXT,
  cycle_anchor INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  cycle        INTEGER NOT NULL,
  next_expiry  INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE cycles (
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  n            INTEGER NOT NULL,
  start_at     INTEGER NOT NULL,
  end_at       INTEGER NOT NULL,
  granted      INTEGER NOT NULL,
  available    INTEGER NOT NULL CHECK (available >= 0),
  held         INTEGER NOT NULL CHECK (held >= 0),
  used         INTEGER NOT NULL CHECK (used >= 0),
  expired      INTEGER NOT NULL CHECK (expired >= 0),
  PRIMARY KEY (workspace_id, n),
  CHECK (available + held + used + expired = granted)
) STRICT, WITHOUT ROWID;

CREATE TABLE charges (
  id           TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  cycle        INTEGER NOT NULL,
  operation    TEXT NOT NULL,
  quantity     INTEGER NOT NULL CHECK (quantity >= 1),
  cost         INTEGER NOT NULL CHECK (cost >= 0),
  status       TEXT NOT NULL CHECK (status IN ('held', 'captured', 'released', 'expired')),
  member_id    TEXT,
  metadata     TEXT,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  finalized_at INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
-- Held charges by expiry: the sweeper's and the lazy expiry's index. (One
-- index only: every index is paid twice per charge, at its hold and capture.)
CREATE INDEX charges_held ON charges (expires_at) WHERE status = 'held';

CREATE TABLE entries (
  seq             INTEGER PRIMARY KEY, -- never deleted, so rowids only grow (no AUTOINCREMENT table to update)
  workspace_id    TEXT NOT NULL REFERENCES workspaces(id),
  cycle           INTEGER NOT NULL,
  at              INTEGER NOT NULL,
  type            TEXT NOT NULL,
  amount          INTEGER NOT NULL,
  available_after INTEGER NOT NULL CHECK (available_after >= 0),
  charge_id       TEXT,
  operation       TEXT,
  member_id       TEXT,
  reason          TEXT
) STRICT;
CREATE INDEX entries_ws ON entries (workspace_id, seq);
-- No cycle is granted twice. (That a charge is held and finished once is the
-- single writer's to keep, checked by `credits verify`; unique indexes on
-- charge_id would cost two index writes per charge. PostgreSQL, with many
-- writers, has them.)
CREATE UNIQUE INDEX entries_one_grant ON entries (workspace_id, cycle) WHERE type = 'grant';

CREATE TABLE idempotency (
  workspace_id TEXT NOT NULL,
  key          TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  result       TEXT NOT NULL,
  PRIMARY KEY (workspace_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE api_keys (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  scope      TEXT NOT NULL,
  hash       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Entries are never changed or deleted.
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are never changed'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted'); END;
