-- Migration 1: the credits schema. Money is bigint credits; CHECK constraints
-- and unique indexes are the last guard of the invariants: a batch that
-- would break one fails whole and commits nothing.
CREATE TABLE workspaces (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  plan         text NOT NULL,
  pending_plan text,
  cycle_anchor timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  cycle        integer NOT NULL,
  next_expiry  timestamptz
);

CREATE TABLE cycles (
  workspace_id text NOT NULL REFERENCES workspaces (id),
  n            integer NOT NULL,
  start_at     timestamptz NOT NULL,
  end_at       timestamptz NOT NULL,
  granted      bigint NOT NULL,
  available    bigint NOT NULL CHECK (available >= 0),
  held         bigint NOT NULL CHECK (held >= 0),
  used         bigint NOT NULL CHECK (used >= 0),
  expired      bigint NOT NULL CHECK (expired >= 0),
  PRIMARY KEY (workspace_id, n),
  CHECK (available + held + used + expired = granted)
);

CREATE TABLE charges (
  id           text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces (id),
  cycle        integer NOT NULL,
  operation    text NOT NULL,
  quantity     bigint NOT NULL CHECK (quantity >= 1),
  cost         bigint NOT NULL CHECK (cost >= 0),
  status       text NOT NULL CHECK (status IN ('held', 'captured', 'released', 'expired')),
  member_id    text,
  metadata     jsonb,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  finalized_at timestamptz
);
CREATE INDEX charges_held ON charges (expires_at) WHERE status = 'held';
CREATE INDEX charges_ws_held ON charges (workspace_id, expires_at) WHERE status = 'held';

CREATE TABLE entries (
  seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id    text NOT NULL REFERENCES workspaces (id),
  cycle           integer NOT NULL,
  at              timestamptz NOT NULL,
  type            text NOT NULL,
  amount          bigint NOT NULL,
  available_after bigint NOT NULL CHECK (available_after >= 0),
  charge_id       text,
  operation       text,
  member_id       text,
  reason          text
);
CREATE INDEX entries_ws ON entries (workspace_id, seq);
-- No cycle is granted twice; no charge is finished twice.
CREATE UNIQUE INDEX entries_one_grant ON entries (workspace_id, cycle) WHERE type = 'grant';
CREATE UNIQUE INDEX entries_one_finish ON entries (charge_id) WHERE charge_id IS NOT NULL AND type <> 'hold';
CREATE UNIQUE INDEX entries_one_hold ON entries (charge_id) WHERE charge_id IS NOT NULL AND type = 'hold';

CREATE FUNCTION entries_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger entries are never changed or deleted';
END $$;
CREATE TRIGGER entries_no_change BEFORE UPDATE OR DELETE ON entries
  FOR EACH ROW EXECUTE FUNCTION entries_immutable();

CREATE TABLE idempotency (
  workspace_id text NOT NULL,
  key          text NOT NULL,
  fingerprint  text NOT NULL,
  created_at   timestamptz NOT NULL,
  result       jsonb NOT NULL,
  PRIMARY KEY (workspace_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE api_keys (
  id         text PRIMARY KEY,
  name       text NOT NULL,
  scope      text NOT NULL,
  hash       text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL
);
