package bench

// The naive baseline: what a team would write by hand. Per hold, one
// transaction: a conditional UPDATE of the balance (no row: not enough
// credits), the charge row and a ledger row. Per capture, one transaction:
// the charge, the balance and a ledger row. Same durability as the engine
// (SQLite: WAL, synchronous=FULL; PostgreSQL: synchronous_commit as the
// server has it), its own tables in the same kind of database, and the
// connections a hand-written service would have: on SQLite one (the usual
// advice for SQLite writers in Go: database/sql queues the callers, where
// a pool of them each waiting on busy_timeout for the write lock sleeps in
// SQLite's backoff of up to 100 ms with the lock free, which made
// 532-886 pairs/s with a p99 of 0.73-0.94 s against 891-1,291 and 0.16-0.56
// s with one, in turn on 2026-12-02), every transaction BEGIN IMMEDIATE;
// on PostgreSQL one connection per worker.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// errNaiveInsufficient is the naive hold's refusal.
var errNaiveInsufficient = errors.New("naive: insufficient credits")

// errNaiveNotHeld is the naive capture of a charge that is not held.
var errNaiveNotHeld = errors.New("naive: charge not held")

// naiveSchema is the same in both databases (plain SQL types). granted is
// what the workspace started with: available + held + used = granted.
const naiveSchema = `
CREATE TABLE naive_balances (
  id        TEXT PRIMARY KEY,
  granted   BIGINT NOT NULL,
  available BIGINT NOT NULL CHECK (available >= 0),
  held      BIGINT NOT NULL CHECK (held >= 0),
  used      BIGINT NOT NULL CHECK (used >= 0)
);
CREATE TABLE naive_charges (
  id              TEXT PRIMARY KEY,
  workspace_id    TEXT NOT NULL REFERENCES naive_balances(id),
  idempotency_key TEXT NOT NULL,
  operation       TEXT NOT NULL,
  cost            BIGINT NOT NULL,
  status          TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  finalized_at    BIGINT NOT NULL DEFAULT 0,
  UNIQUE (workspace_id, idempotency_key)
);
CREATE TABLE naive_ledger (
  workspace_id TEXT NOT NULL,
  charge_id    TEXT NOT NULL,
  type         TEXT NOT NULL,
  amount       BIGINT NOT NULL,
  at           BIGINT NOT NULL
);
CREATE INDEX naive_ledger_ws ON naive_ledger (workspace_id);
`

// naiveCost is content_rewrite's cost.
const naiveCost = 1

// naiveTarget runs the baseline on SQLite (db) or PostgreSQL (pool).
type naiveTarget struct {
	db     *sql.DB
	pool   *pgxpool.Pool
	schema *pgSchema
	ids    []string
}

// naiveSQLiteDSN has the engine store's durability (WAL, every commit
// synced) and BEGIN IMMEDIATE. Foreign keys stay on, as a hand-written
// schema has them: the engine's writer checks none (its rows come from
// workspaces it read, and credits verify checks them), but a baseline
// without a verifier relies on them; a pair's two synced commits dwarf
// their lookups either way.
func naiveSQLiteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

func newNaiveTarget(ctx context.Context, cfg *Config, s scenario, tmp string, ids []string) (_ *naiveTarget, err error) {
	t := &naiveTarget{ids: ids}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	switch s.backend {
	case "sqlite":
		if t.db, err = sql.Open("sqlite", naiveSQLiteDSN(filepath.Join(tmp, fileName(s.name)+".db"))); err != nil {
			return nil, err
		}
		t.db.SetMaxOpenConns(1)
		t.db.SetMaxIdleConns(1)
		if _, err := t.db.ExecContext(ctx, naiveSchema); err != nil {
			return nil, err
		}
		tx, err := t.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback()
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `INSERT INTO naive_balances (id, granted, available, held, used) VALUES (?, ?, ?, 0, 0)`,
				id, benchPlan.MonthlyCredits, benchPlan.MonthlyCredits); err != nil {
				return nil, err
			}
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
	case "postgres":
		if t.schema, err = newPGSchema(ctx, cfg.PostgresURL); err != nil {
			return nil, err
		}
		pc, err := pgxpool.ParseConfig(t.schema.url)
		if err != nil {
			return nil, err
		}
		pc.MaxConns = int32(cfg.Workers)
		if t.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
			return nil, err
		}
		if _, err := t.pool.Exec(ctx, naiveSchema); err != nil {
			return nil, err
		}
		rows := make([][]any, len(ids))
		for i, id := range ids {
			rows[i] = []any{id, benchPlan.MonthlyCredits, benchPlan.MonthlyCredits, int64(0), int64(0)}
		}
		if _, err := t.pool.CopyFrom(ctx, pgx.Identifier{"naive_balances"}, []string{"id", "granted", "available", "held", "used"}, pgx.CopyFromRows(rows)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("naive on %q", s.backend)
	}
	return t, nil
}

func newNaiveChargeID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "ch_" + hex.EncodeToString(b[:])
}

func (t *naiveTarget) Pair(ctx context.Context, workspaceID, key string) error {
	id, err := t.hold(ctx, workspaceID, key)
	if err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	if err := t.capture(ctx, id); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	return nil
}

func (t *naiveTarget) hold(ctx context.Context, workspaceID, key string) (string, error) {
	id := newNaiveChargeID()
	now := time.Now().UnixMicro()
	if t.pool != nil {
		return id, pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE naive_balances SET available = available - $1, held = held + $1 WHERE id = $2 AND available >= $1`, naiveCost, workspaceID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return errNaiveInsufficient
			}
			if _, err := tx.Exec(ctx, `INSERT INTO naive_charges (id, workspace_id, idempotency_key, operation, cost, status, created_at) VALUES ($1, $2, $3, $4, $5, 'held', $6)`,
				id, workspaceID, key, benchOperation, naiveCost, now); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO naive_ledger (workspace_id, charge_id, type, amount, at) VALUES ($1, $2, 'hold', $3, $4)`, workspaceID, id, -naiveCost, now)
			return err
		})
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE naive_balances SET available = available - ?, held = held + ? WHERE id = ? AND available >= ?`, naiveCost, naiveCost, workspaceID, naiveCost)
	if err != nil {
		return "", err
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", err
	} else if n == 0 {
		return "", errNaiveInsufficient
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO naive_charges (id, workspace_id, idempotency_key, operation, cost, status, created_at) VALUES (?, ?, ?, ?, ?, 'held', ?)`,
		id, workspaceID, key, benchOperation, naiveCost, now); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO naive_ledger (workspace_id, charge_id, type, amount, at) VALUES (?, ?, 'hold', ?, ?)`, workspaceID, id, -naiveCost, now); err != nil {
		return "", err
	}
	return id, tx.Commit()
}

func (t *naiveTarget) capture(ctx context.Context, chargeID string) error {
	now := time.Now().UnixMicro()
	var workspaceID string
	var cost int64
	if t.pool != nil {
		return pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `UPDATE naive_charges SET status = 'captured', finalized_at = $1 WHERE id = $2 AND status = 'held' RETURNING workspace_id, cost`, now, chargeID).Scan(&workspaceID, &cost)
			if errors.Is(err, pgx.ErrNoRows) {
				return errNaiveNotHeld
			} else if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE naive_balances SET held = held - $1, used = used + $1 WHERE id = $2`, cost, workspaceID); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO naive_ledger (workspace_id, charge_id, type, amount, at) VALUES ($1, $2, 'capture', 0, $3)`, workspaceID, chargeID, now)
			return err
		})
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `UPDATE naive_charges SET status = 'captured', finalized_at = ? WHERE id = ? AND status = 'held' RETURNING workspace_id, cost`, now, chargeID).Scan(&workspaceID, &cost)
	if errors.Is(err, sql.ErrNoRows) {
		return errNaiveNotHeld
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE naive_balances SET held = held - ?, used = used + ? WHERE id = ?`, cost, cost, workspaceID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO naive_ledger (workspace_id, charge_id, type, amount, at) VALUES (?, ?, 'capture', 0, ?)`, workspaceID, chargeID, now); err != nil {
		return err
	}
	return tx.Commit()
}

// naiveChecks are queries that return the rows that do not add up, as text.
var naiveChecks = []struct{ what, query string }{
	{"available + held + used = granted", `SELECT id FROM naive_balances WHERE available + held + used <> granted`},
	{"available = granted + the ledger's holds", `SELECT b.id FROM naive_balances b
	  LEFT JOIN (SELECT workspace_id, SUM(amount) AS s FROM naive_ledger GROUP BY workspace_id) l ON l.workspace_id = b.id
	  WHERE b.available <> b.granted + COALESCE(l.s, 0)`},
	{"held = the held charges", `SELECT b.id FROM naive_balances b
	  LEFT JOIN (SELECT workspace_id, SUM(cost) AS s FROM naive_charges WHERE status = 'held' GROUP BY workspace_id) c ON c.workspace_id = b.id
	  WHERE b.held <> COALESCE(c.s, 0)`},
	{"used = the captured charges", `SELECT b.id FROM naive_balances b
	  LEFT JOIN (SELECT workspace_id, SUM(cost) AS s FROM naive_charges WHERE status = 'captured' GROUP BY workspace_id) c ON c.workspace_id = b.id
	  WHERE b.used <> COALESCE(c.s, 0)`},
	{"one capture entry per captured charge", `SELECT c.id FROM naive_charges c
	  WHERE (c.status = 'captured') <> EXISTS (SELECT 1 FROM naive_ledger l WHERE l.charge_id = c.id AND l.type = 'capture')`},
}

// Verify checks that the naive tables' balances add up.
func (t *naiveTarget) Verify(ctx context.Context) error {
	var problems []string
	for _, c := range naiveChecks {
		var bad []string
		if t.pool != nil {
			rows, err := t.pool.Query(ctx, c.query+" LIMIT 5")
			if err != nil {
				return err
			}
			bad, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
		} else {
			rows, err := t.db.QueryContext(ctx, c.query+" LIMIT 5")
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				bad = append(bad, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(bad) > 0 {
			problems = append(problems, fmt.Sprintf("%s fails for %s", c.what, strings.Join(bad, ", ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("naive tables: %s", strings.Join(problems, "; "))
	}
	return nil
}

func (t *naiveTarget) Close() error {
	var errs []error
	if t.db != nil {
		errs = append(errs, t.db.Close())
	}
	if t.pool != nil {
		t.pool.Close()
	}
	if t.schema != nil {
		errs = append(errs, t.schema.drop())
	}
	return errors.Join(errs...)
}
