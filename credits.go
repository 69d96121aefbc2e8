// Package credits holds the domain of the credits service: operations and
// plans, workspaces, balances, charges and ledger entries, cycle arithmetic and
// error codes. It has no I/O and imports nothing from this module; every other
// package imports it.
//
// Invariants, per workspace and billing cycle:
//
//	available + held + used + expired == granted
//	available >= 0, held >= 0, used >= 0, expired >= 0
//	expired == 0 for the current cycle (credits expire only at a reset)
//	the ledger's running sum of amounts since the cycle's grant == available
//
// Money is int64 whole credits everywhere; there are no floats near a balance.
package credits

import "time"

// Limits asserted at the edges. Units come last in names.
const (
	MaxHoldSeconds     = 3600
	DefaultHoldSeconds = 600
	MaxQuantity        = 1_000_000
	MaxCount           = 1_000_000_000 // estimate item count
	MaxCost            = 1_000_000_000 // per operation unit
	MaxIdempotencyKey  = 255
	MaxMemberID        = 255
	MaxWorkspaceName   = 200
	MaxMetadataKeys    = 50
	MaxMetadataKey     = 40
	MaxMetadataValue   = 500
	MaxEstimateItems   = 100
	MaxLedgerPage      = 500
	DefaultLedgerPage  = 50
	IdempotencyTTL     = 24 * time.Hour
)

// Workspace owns credits; its members share them.
type Workspace struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Plan        string    `json:"plan"`
	PendingPlan *string   `json:"pending_plan"`
	CycleAnchor time.Time `json:"cycle_anchor"`
	CreatedAt   time.Time `json:"created_at"`
}

// Cycle is one billing cycle's money. Cycle N of a workspace starts at
// CycleStart(anchor, N).
type Cycle struct {
	N         int       `json:"-"`
	Start     time.Time `json:"-"`
	End       time.Time `json:"-"`
	Granted   int64     `json:"-"`
	Available int64     `json:"-"`
	Held      int64     `json:"-"`
	Used      int64     `json:"-"`
	Expired   int64     `json:"-"`
}

// Balanced reports whether the cycle's sums add up.
func (c Cycle) Balanced() bool {
	return c.Available >= 0 && c.Held >= 0 && c.Used >= 0 && c.Expired >= 0 &&
		c.Available+c.Held+c.Used+c.Expired == c.Granted
}

// Balance is the public view of a workspace's current cycle.
type Balance struct {
	WorkspaceID    string    `json:"workspace_id"`
	Plan           string    `json:"plan"`
	MonthlyCredits int64     `json:"monthly_credits"`
	Granted        int64     `json:"granted"`
	Available      int64     `json:"available"`
	Held           int64     `json:"held"`
	Used           int64     `json:"used"`
	CycleStart     time.Time `json:"cycle_start"`
	CycleEnd       time.Time `json:"cycle_end"`
}

// Charge statuses.
const (
	StatusHeld     = "held"
	StatusCaptured = "captured"
	StatusReleased = "released"
	StatusExpired  = "expired"
)

// Charge is a hold on credits for one operation, later captured, released or
// expired. Cost is fixed when the hold is made.
type Charge struct {
	ID          string            `json:"id"`
	WorkspaceID string            `json:"workspace_id"`
	Operation   string            `json:"operation"`
	Quantity    int64             `json:"quantity"`
	Cost        int64             `json:"cost"`
	Status      string            `json:"status"`
	MemberID    *string           `json:"member_id"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   time.Time         `json:"created_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	// Cycle is the billing cycle the hold was made in; its use or expiry
	// counts there.
	Cycle int `json:"-"`
	// FinalizedAt is when it left the held state (zero while held).
	FinalizedAt time.Time `json:"-"`
}

// Ledger entry types.
const (
	EntryGrant   = "grant"
	EntryExpire  = "expire"
	EntryUpgrade = "upgrade"
	EntryHold    = "hold"
	EntryRelease = "release"
	EntryCapture = "capture"
	EntryAdjust  = "adjust"
)

// Entry is one immutable ledger line. AvailableAfter is the running sum of
// amounts since the cycle's grant.
type Entry struct {
	Seq            int64     `json:"-"`
	ID             string    `json:"id"`
	WorkspaceID    string    `json:"-"`
	Cycle          int       `json:"-"`
	At             time.Time `json:"at"`
	Type           string    `json:"type"`
	Amount         int64     `json:"amount"`
	AvailableAfter int64     `json:"available_after"`
	ChargeID       string    `json:"charge_id,omitempty"`
	Operation      string    `json:"operation,omitempty"`
	MemberID       string    `json:"member_id,omitempty"`
	Reason         string    `json:"reason,omitempty"`
}

// ChargeView is a charge as the API shows it: the charge's fields and the
// workspace's balance (after the change that answered it).
type ChargeView struct {
	Charge
	Balance *Balance `json:"balance,omitempty"`
}
