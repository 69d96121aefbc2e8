package ledger

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/credits-dev/credits"
)

// Account is what the writer needs of a workspace: the workspace row and its
// current cycle.
type Account struct {
	Workspace credits.Workspace
	Cycle     credits.Cycle
	// NextExpiry is a lower bound on the earliest expires_at of the
	// workspace's held charges (zero when it has none). A stale, early value
	// only costs an extra look; it is never later than the truth.
	NextExpiry time.Time
}

// CycleKey names one billing cycle of one workspace.
type CycleKey struct {
	WorkspaceID string
	N           int
}

// SortCycleKeys puts keys in workspace, then cycle order: the order rows
// are written in, so b-tree inserts touch each page once.
func SortCycleKeys(keys []CycleKey) {
	slices.SortFunc(keys, func(a, b CycleKey) int {
		if c := strings.Compare(a.WorkspaceID, b.WorkspaceID); c != 0 {
			return c
		}
		return a.N - b.N
	})
}

// IdemKey scopes an Idempotency-Key to its workspace.
type IdemKey struct {
	WorkspaceID string
	Key         string
}

// IdemRecord is the first answer given for an Idempotency-Key. Only answers
// that wrote something (a hold) or refused for lack of credits are kept.
type IdemRecord struct {
	WorkspaceID string
	Key         string
	Fingerprint string
	CreatedAt   time.Time
	Result      ChargeResult
}

// ChargeResult is the answer to a charge command: the charge and the balance
// right after it, or the refusal.
type ChargeResult struct {
	Charge  *credits.Charge  `json:"charge,omitempty"`
	Balance *credits.Balance `json:"balance,omitempty"`
	Err     *credits.Error   `json:"error,omitempty"`
}

// View is the charge as the API shows it.
func (r ChargeResult) View() credits.ChargeView {
	v := credits.ChargeView{Charge: *r.Charge, Balance: r.Balance}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	return v
}

// CycleRow is a cycle to write, with its workspace.
type CycleRow struct {
	WorkspaceID string
	Cycle       credits.Cycle
}

// Changes is everything one batch writes, in one transaction.
type Changes struct {
	NewWorkspaces []Account // inserted (workspace row and its first cycle)
	Accounts      []Account // workspace rows updated (plan, pending plan, cycle, next expiry)
	Cycles        []CycleRow
	NewCharges    []credits.Charge // inserted
	Charges       []credits.Charge // finished: status and finalized_at updated
	Entries       []credits.Entry  // appended; the store assigns Seq and ID
	Idempotency   []IdemRecord     // inserted or replaced
}

// Empty reports whether there is nothing to write.
func (c *Changes) Empty() bool {
	return len(c.NewWorkspaces) == 0 && len(c.Accounts) == 0 && len(c.Cycles) == 0 &&
		len(c.NewCharges) == 0 && len(c.Charges) == 0 && len(c.Entries) == 0 && len(c.Idempotency) == 0
}

// Store is the storage the engine needs. Writes go through Tx only, from the
// one writer of a process; reads return the last committed state and never
// wait on the writer.
type Store interface {
	Begin(ctx context.Context) (Tx, error)

	Account(ctx context.Context, workspaceID string) (Account, error)
	Charge(ctx context.Context, id string) (credits.Charge, error)
	// Entries returns up to limit entries of a workspace with Seq < before
	// (before <= 0: from the newest), newest first.
	Entries(ctx context.Context, workspaceID string, before int64, limit int) ([]credits.Entry, error)
	// DueWorkspaces lists workspaces that have a held charge expiring at or
	// before now.
	DueWorkspaces(ctx context.Context, now time.Time, limit int) ([]string, error)
	// PlanUsage counts workspaces on each plan, current or pending.
	PlanUsage(ctx context.Context) (map[string]int, error)
	// DeleteIdempotency drops keys created before cutoff.
	DeleteIdempotency(ctx context.Context, before time.Time) (int, error)
	Ping(ctx context.Context) error
	Close() error
}

// Tx is one write transaction. On a store with many writing processes the
// Load methods lock what they return until Commit or Rollback.
type Tx interface {
	Accounts(ctx context.Context, ids []string) (map[string]Account, error)
	Charges(ctx context.Context, ids []string) (map[string]credits.Charge, error)
	Cycles(ctx context.Context, keys []CycleKey) (map[CycleKey]credits.Cycle, error)
	// DueHolds returns the held charges of a workspace that expire at or
	// before now, earliest first, and the earliest expires_at after now of
	// its other held charges (zero if none).
	DueHolds(ctx context.Context, workspaceID string, now time.Time) ([]credits.Charge, time.Time, error)
	Idempotency(ctx context.Context, keys []IdemKey) (map[IdemKey]IdemRecord, error)
	Write(ctx context.Context, c *Changes) error
	Commit() error
	Rollback() error
}

// BatchLoader is a Tx that reads all of a batch's rows in one round trip
// (a store that many processes write to, where each round trip of a batch
// is time its locks are held). The engine calls LoadBatch instead of
// Charges, Accounts, Charges again and Idempotency.
type BatchLoader interface {
	// LoadBatch locks the workspaces named and those of the charges
	// named, in the order Accounts locks them, and reads under the locks
	// their accounts, the charges and the idempotency keys. What does not
	// exist is left out of the maps.
	LoadBatch(ctx context.Context, workspaces, charges []string, keys []IdemKey) (Loaded, error)
}

// Loaded is what LoadBatch read.
type Loaded struct {
	Accounts map[string]Account
	Charges  map[string]credits.Charge
	Idem     map[IdemKey]IdemRecord
}

// Listener is a Store that many processes write to. It announces every
// committed balance change, from any process; the engine then publishes
// balances from what it reads, never from its own batches, so a stream never
// goes back to an older balance.
type Listener interface {
	// Listen calls fn with a workspace id after each committed change to
	// it, until ctx ends.
	Listen(ctx context.Context, fn func(workspaceID string)) error
}
