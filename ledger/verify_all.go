package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/credits-dev/credits"
)

// Verify checks every workspace of a store against the invariants (see
// package credits), from what is committed. It reads the whole database in
// one snapshot (a live server may keep writing; Verify does not see it),
// streaming every table in index or sort order and merging the streams, so
// a database of any size is checked in bounded memory and about one pass.
//
// What it checks, per workspace:
//
//   - every cycle row adds up: available + held + used + expired == granted,
//     none negative; the current cycle has expired nothing; the cycle rows run
//     without a gap up to the current cycle;
//   - the ledger, oldest first: every available_after is the running sum of
//     amounts since its cycle's grant, every entry is in the cycle of the
//     grant before it, and the sum ends each cycle at that cycle's available;
//   - every cycle row is granted exactly once (one grant entry);
//   - every charge has exactly one hold entry (of -cost, in its cycle); a
//     held charge nothing else; a captured, released or expired charge
//     exactly one finishing entry of the right type: capture (0), release
//     (+cost) in its own cycle, expire (0) after it; no entry names a charge
//     the workspace does not have, and no charge, ledger entry or cycle row
//     names a workspace that does not exist (see Snapshot's Orphans);
//   - per cycle, the held and captured charges' costs sum to held and used;
//   - idempotency: every stored answer that names a charge names one of the
//     workspace's charges, as it was made (operation, quantity, cost,
//     created_at); no charge is named by two keys (each request with a new
//     key makes its own charge); and a charge younger than the keys' lifetime
//     (less an hour for clock skew) is named by one key: keys are deleted
//     only after IdempotencyTTL, so a recent charge without its key was made
//     by a request whose answer is lost, and its retry would charge again.
//
// fn, if not nil, is called with each violation as it is found. Verify
// returns an error only when the store cannot be read; violations are in the
// report.
func Verify(ctx context.Context, st VerifyStore, fn func(Violation)) (VerifyReport, error) {
	v := &verifier{now: time.Now(), fn: fn, report: VerifyReport{Violations: []Violation{}}}
	err := st.ReadSnapshot(ctx, func(snap Snapshot) error {
		ws, err := snap.Workspaces(ctx)
		if err != nil {
			return err
		}
		defer ws.Close()
		cs, err := snap.Charges(ctx)
		if err != nil {
			return err
		}
		defer cs.Close()
		workspaces := &peeker[string]{s: ws}
		charges := &peeker[credits.Charge]{s: cs}
		for {
			id, ok, err := workspaces.next(ctx)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if err := v.chargesWithoutWorkspace(ctx, charges, id); err != nil {
				return err
			}
			if err := v.workspace(ctx, id, snap, charges); err != nil {
				return fmt.Errorf("workspace %s: %w", id, err)
			}
			v.report.Workspaces++
		}
		if err := v.chargesWithoutWorkspace(ctx, charges, ""); err != nil {
			return err
		}
		if err := v.orphans(ctx, snap); err != nil {
			return err
		}
		if ki, ok := snap.(KeyIndex); ok {
			return v.unfindableKeys(ctx, ki)
		}
		return nil
	})
	if err != nil {
		return v.report, fmt.Errorf("verify: %w", err)
	}
	return v.report, nil
}

// chargesWithoutWorkspace reports the charges (in workspace order) of
// workspaces before ws ("": all the rest): none of them exists.
func (v *verifier) chargesWithoutWorkspace(ctx context.Context, charges *peeker[credits.Charge], ws string) error {
	for {
		c, ok, err := charges.peek(ctx)
		if err != nil || !ok || (ws != "" && c.WorkspaceID >= ws) {
			return err
		}
		charges.skip()
		v.report.Charges++
		v.add(ViolationChargeWorkspace, c.WorkspaceID, c.ID, "the charge's workspace does not exist")
	}
}

// orphans reports the ledger entries and cycle rows of workspaces that do
// not exist.
func (v *verifier) orphans(ctx context.Context, snap Snapshot) error {
	return forEach(ctx, snap.Orphans, func(o Orphan) {
		if o.Cycle {
			v.add(ViolationCycleWorkspace, o.WorkspaceID, o.ID, "the cycle row's workspace does not exist")
		} else {
			v.add(ViolationEntryWorkspace, o.WorkspaceID, o.ID, "the ledger entry's workspace does not exist")
		}
	})
}

// unfindableKeys reports the stored idempotency keys a lookup would not
// find: a retry under one would be charged again.
func (v *verifier) unfindableKeys(ctx context.Context, ki KeyIndex) error {
	return forEach(ctx, ki.UnfindableKeys, func(k IdemKey) {
		v.add(ViolationIdemUnfindable, k.WorkspaceID, k.Key, "the key is stored but its lookup does not find it: a retry would be charged again")
	})
}

// forEach opens a stream, calls fn with each of its items and closes it.
func forEach[T any](ctx context.Context, open func(context.Context) (Stream[T], error), fn func(T)) error {
	st, err := open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	for {
		page, err := st.Next(ctx)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, x := range page {
			fn(x)
		}
	}
}

// verifyPage is how many rows one page of a stream holds.
const verifyPage = 500

// MaxReportedViolations bounds the violations a report lists; all are
// counted, and all are passed to Verify's fn.
const MaxReportedViolations = 1000

// VerifyStore is the read side Verify needs. Both stores implement it.
type VerifyStore interface {
	// ReadSnapshot calls fn with a read-only view of the whole database,
	// all read in one snapshot (what commits meanwhile is not seen). The
	// view is valid only during fn.
	ReadSnapshot(ctx context.Context, fn func(Snapshot) error) error
}

// Snapshot is the database as of one moment. Ids are ordered bytewise.
// Verify asks for a workspace's Entries, ChargeEntries and
// IdempotencyCharges once each, workspace by workspace in the order
// Workspaces gives, so a store may serve each from one cursor over the
// whole table.
type Snapshot interface {
	// Workspaces streams the workspace ids, in order.
	Workspaces(ctx context.Context) (Stream[string], error)
	// Charges streams every charge, by workspace id, then id.
	Charges(ctx context.Context) (Stream[credits.Charge], error)
	// CurrentCycle is a workspace row's current cycle number.
	CurrentCycle(ctx context.Context, workspaceID string) (int, error)
	// Cycles returns every cycle row of a workspace, oldest first.
	Cycles(ctx context.Context, workspaceID string) ([]credits.Cycle, error)
	// Entries streams a workspace's ledger, oldest first (by Seq).
	Entries(ctx context.Context, workspaceID string) (Stream[credits.Entry], error)
	// ChargeEntries streams a workspace's entries that name a charge, by
	// charge id, then Seq.
	ChargeEntries(ctx context.Context, workspaceID string) (Stream[credits.Entry], error)
	// IdempotencyCharges streams a workspace's idempotency records whose
	// stored answer holds a charge, by that charge's id, then key.
	IdempotencyCharges(ctx context.Context, workspaceID string) (Stream[IdemRecord], error)
	// Orphans streams the ledger entries and cycle rows whose workspace
	// does not exist, in any order. PostgreSQL has no foreign key on
	// entries (migration 5: it cost a lock of the workspace's row per
	// entry), and SQLite checks its keys only on connections that ask
	// (the sqlite3 shell does not): the engine writes these rows only for
	// a workspace it has read, and this is the check that it did.
	Orphans(ctx context.Context) (Stream[Orphan], error)
}

// KeyIndex is a Snapshot whose idempotency lookups go through an index the
// store writes itself (SQLite's idempotency_index, written in sorted runs)
// rather than one its database keeps.
type KeyIndex interface {
	// UnfindableKeys streams the stored keys a lookup would not find.
	UnfindableKeys(ctx context.Context) (Stream[IdemKey], error)
}

// Orphan is a ledger entry or a cycle row whose workspace does not exist.
type Orphan struct {
	WorkspaceID string
	ID          string // the entry's id (le_…), or "cycle N"
	Cycle       bool   // a cycle row, not an entry
}

// Stream reads rows page by page.
type Stream[T any] interface {
	// Next returns the next page of rows; none at the end.
	Next(ctx context.Context) ([]T, error)
	Close() error
}

// Violation is one broken invariant. ID names the offending row: a ledger
// entry (le_…), a charge (ch_…), a cycle ("cycle N") or an Idempotency-Key.
type Violation struct {
	Code        string `json:"code"`
	WorkspaceID string `json:"workspace_id"`
	ID          string `json:"id"`
	Detail      string `json:"detail"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s workspace=%s id=%s: %s", v.Code, v.WorkspaceID, v.ID, v.Detail)
}

// Violation codes.
const (
	ViolationCycleUnbalanced     = "cycle_unbalanced"
	ViolationCurrentCycleExpired = "current_cycle_expired"
	ViolationCycleMissing        = "cycle_missing"
	ViolationCycleNotGranted     = "cycle_not_granted"
	ViolationCycleGrantedTwice   = "cycle_granted_twice"
	ViolationCycleCharges        = "cycle_charges"
	ViolationLedgerRunningSum    = "ledger_running_sum"
	ViolationLedgerAvailable     = "ledger_sum_available"
	ViolationLedgerCycle         = "ledger_entry_cycle"
	ViolationChargeHold          = "charge_hold_entries"
	ViolationChargeFinish        = "charge_finish_entries"
	ViolationEntryUnknownCharge  = "entry_unknown_charge"
	ViolationIdemUnknownCharge   = "idempotency_unknown_charge"
	ViolationIdemAnswer          = "idempotency_answer_mismatch"
	ViolationIdemSharedCharge    = "idempotency_shared_charge"
	ViolationChargeNoIdempotency = "charge_without_idempotency"
	ViolationChargeWorkspace     = "charge_unknown_workspace"
	ViolationEntryWorkspace      = "entry_unknown_workspace"
	ViolationCycleWorkspace      = "cycle_unknown_workspace"
	ViolationIdemUnfindable      = "idempotency_key_unfindable"
)

// idempotencyClockSkew is how much younger than IdempotencyTTL a charge must
// be for its key to be required: instances prune keys by their own clocks.
const idempotencyClockSkew = time.Hour

// VerifyReport says what Verify checked and what it found.
type VerifyReport struct {
	Workspaces         int64 `json:"workspaces"`
	Cycles             int64 `json:"cycles"`
	Entries            int64 `json:"entries"`
	Charges            int64 `json:"charges"`
	IdempotencyRecords int64 `json:"idempotency_records"`
	// ViolationCount counts every violation; Violations lists the first
	// MaxReportedViolations.
	ViolationCount int64       `json:"violation_count"`
	Violations     []Violation `json:"violations"`
}

// OK reports whether no invariant is broken.
func (r VerifyReport) OK() bool { return r.ViolationCount == 0 }

type verifier struct {
	now    time.Time
	fn     func(Violation)
	report VerifyReport
}

func (v *verifier) add(code, ws, id, format string, args ...any) {
	x := Violation{Code: code, WorkspaceID: ws, ID: id, Detail: fmt.Sprintf(format, args...)}
	v.report.ViolationCount++
	if len(v.report.Violations) < MaxReportedViolations {
		v.report.Violations = append(v.report.Violations, x)
	}
	if v.fn != nil {
		v.fn(x)
	}
}

// cycleCheck is what the checks learn about one cycle row.
type cycleCheck struct {
	credits.Cycle
	grants     int
	ledgerEnd  int64 // the running sum at the end of the cycle's entries
	heldSum    int64 // costs of its held charges
	usedSum    int64 // costs of its captured charges
	hasEntries bool
}

func cycleID(n int) string { return fmt.Sprintf("cycle %d", n) }

func (v *verifier) workspace(ctx context.Context, ws string, snap Snapshot, charges *peeker[credits.Charge]) error {
	cur, err := snap.CurrentCycle(ctx, ws)
	if err != nil {
		return err
	}
	list, err := snap.Cycles(ctx, ws)
	if err != nil {
		return err
	}
	cycles := make(map[int]*cycleCheck, len(list))
	for i, c := range list {
		v.report.Cycles++
		cycles[c.N] = &cycleCheck{Cycle: c}
		if !c.Balanced() {
			v.add(ViolationCycleUnbalanced, ws, cycleID(c.N), "available %d + held %d + used %d + expired %d != granted %d (or one is negative)",
				c.Available, c.Held, c.Used, c.Expired, c.Granted)
		}
		if c.N == cur && c.Expired != 0 {
			v.add(ViolationCurrentCycleExpired, ws, cycleID(c.N), "the current cycle has expired %d credits; credits expire only at a reset", c.Expired)
		}
		if i > 0 && c.N != list[i-1].N+1 {
			v.add(ViolationCycleMissing, ws, cycleID(list[i-1].N+1), "no cycle row between cycle %d and cycle %d", list[i-1].N, c.N)
		}
		if c.N > cur {
			v.add(ViolationCycleMissing, ws, cycleID(c.N), "a cycle row after the current cycle %d", cur)
		}
	}
	if cycles[cur] == nil {
		v.add(ViolationCycleMissing, ws, cycleID(cur), "the workspace's current cycle has no row")
	}
	if err := v.ledger(ctx, ws, snap, cycles); err != nil {
		return err
	}
	if err := v.charges(ctx, ws, snap, charges, cycles); err != nil {
		return err
	}
	for _, c := range list {
		cc := cycles[c.N]
		switch {
		case cc.grants == 0:
			v.add(ViolationCycleNotGranted, ws, cycleID(c.N), "the cycle has no grant entry")
		case cc.ledgerEnd != c.Available:
			v.add(ViolationLedgerAvailable, ws, cycleID(c.N), "the ledger's running sum ends the cycle at %d, the cycle's available is %d", cc.ledgerEnd, c.Available)
		}
		if cc.heldSum != c.Held {
			v.add(ViolationCycleCharges, ws, cycleID(c.N), "its held charges cost %d, the cycle's held is %d", cc.heldSum, c.Held)
		}
		if cc.usedSum != c.Used {
			v.add(ViolationCycleCharges, ws, cycleID(c.N), "its captured charges cost %d, the cycle's used is %d", cc.usedSum, c.Used)
		}
	}
	return nil
}

// ledger walks the entries oldest first.
func (v *verifier) ledger(ctx context.Context, ws string, snap Snapshot, cycles map[int]*cycleCheck) error {
	s, err := snap.Entries(ctx, ws)
	if err != nil {
		return err
	}
	defer s.Close()
	seg := (*cycleCheck)(nil) // the cycle of the last grant
	segN, sum := 0, int64(0)
	started := false
	for {
		page, err := s.Next(ctx)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			v.report.Entries++
			if e.Type == credits.EntryGrant {
				if started && e.Cycle < segN {
					v.add(ViolationLedgerCycle, ws, e.ID, "a grant of cycle %d after the grant of cycle %d", e.Cycle, segN)
				}
				seg, segN, sum, started = cycles[e.Cycle], e.Cycle, e.Amount, true
				if seg == nil {
					v.add(ViolationLedgerCycle, ws, e.ID, "a grant of cycle %d, which has no cycle row", e.Cycle)
				} else {
					seg.grants++
					if seg.grants > 1 {
						v.add(ViolationCycleGrantedTwice, ws, e.ID, "cycle %d is granted again (grant of %d)", e.Cycle, e.Amount)
					}
				}
			} else {
				if !started {
					v.add(ViolationLedgerCycle, ws, e.ID, "a %s entry before the first grant", e.Type)
					started, segN = true, e.Cycle
				} else if e.Cycle != segN {
					v.add(ViolationLedgerCycle, ws, e.ID, "a %s entry of cycle %d among the entries of cycle %d", e.Type, e.Cycle, segN)
				}
				sum += e.Amount
			}
			if e.AvailableAfter != sum {
				v.add(ViolationLedgerRunningSum, ws, e.ID, "%s %+d: available_after %d, the running sum since the grant is %d", e.Type, e.Amount, e.AvailableAfter, sum)
				sum = e.AvailableAfter // check the next entries against this one
			}
			if seg != nil {
				seg.ledgerEnd, seg.hasEntries = sum, true
			}
		}
	}
	return nil
}

// maxEntriesPerCharge bounds what is kept of one charge's entries (two is
// right; more are counted, not kept).
const maxEntriesPerCharge = 8

// charges merges three streams ordered by charge id: the workspace's
// charges (its run of the global charge stream), the entries that name a
// charge and the idempotency records that name one.
func (v *verifier) charges(ctx context.Context, ws string, snap Snapshot, charges *peeker[credits.Charge], cycles map[int]*cycleCheck) error {
	es, err := snap.ChargeEntries(ctx, ws)
	if err != nil {
		return err
	}
	defer es.Close()
	is, err := snap.IdempotencyCharges(ctx, ws)
	if err != nil {
		return err
	}
	defer is.Close()
	entries := &peeker[credits.Entry]{s: es}
	records := &peeker[IdemRecord]{s: is}
	recCharge := func(r IdemRecord) string { return answerCharge(r).ID }
	entryCharge := func(e credits.Entry) string { return e.ChargeID }

	var mine []credits.Entry
	var recs []IdemRecord
	for {
		c, ok, err := charges.peek(ctx)
		if err != nil {
			return err
		}
		if !ok || c.WorkspaceID != ws {
			break
		}
		charges.skip()
		v.report.Charges++
		mine, recs = mine[:0], recs[:0]
		n, err := takeUpTo(ctx, entries, c.ID, entryCharge, &mine, func(e credits.Entry) {
			v.add(ViolationEntryUnknownCharge, ws, e.ID, "a %s entry names charge %s, which the workspace does not have", e.Type, e.ChargeID)
		})
		if err != nil {
			return err
		}
		if _, err := takeUpTo(ctx, records, c.ID, recCharge, &recs, func(r IdemRecord) {
			v.report.IdempotencyRecords++
			v.add(ViolationIdemUnknownCharge, ws, r.Key, "the stored answer names charge %s, which the workspace does not have", answerCharge(r).ID)
		}); err != nil {
			return err
		}
		v.report.IdempotencyRecords += int64(len(recs))
		v.charge(ws, c, mine, n, cycles)
		v.idempotency(ws, c, recs)
	}
	if _, err := takeUpTo(ctx, entries, "", entryCharge, &mine, func(e credits.Entry) {
		v.add(ViolationEntryUnknownCharge, ws, e.ID, "a %s entry names charge %s, which the workspace does not have", e.Type, e.ChargeID)
	}); err != nil {
		return err
	}
	_, err = takeUpTo(ctx, records, "", recCharge, &recs, func(r IdemRecord) {
		v.report.IdempotencyRecords++
		v.add(ViolationIdemUnknownCharge, ws, r.Key, "the stored answer names charge %s, which the workspace does not have", answerCharge(r).ID)
	})
	return err
}

// takeUpTo consumes the rows of p keyed before id (orphans: passed to
// orphan) and those keyed id (kept in out, at most maxEntriesPerCharge; it
// returns how many there were). An empty id consumes everything as orphans.
func takeUpTo[T any](ctx context.Context, p *peeker[T], id string, key func(T) string, out *[]T, orphan func(T)) (int, error) {
	n := 0
	for {
		x, ok, err := p.peek(ctx)
		if err != nil || !ok {
			return n, err
		}
		k := key(x)
		switch {
		case id == "" || k < id:
			orphan(x)
		case k == id:
			n++
			if len(*out) < maxEntriesPerCharge {
				*out = append(*out, x)
			}
		default:
			return n, nil
		}
		p.skip()
	}
}

func (v *verifier) charge(ws string, c credits.Charge, entries []credits.Entry, total int, cycles map[int]*cycleCheck) {
	if cc := cycles[c.Cycle]; cc != nil {
		switch c.Status {
		case credits.StatusHeld:
			cc.heldSum += c.Cost
		case credits.StatusCaptured:
			cc.usedSum += c.Cost
		}
	} else {
		v.add(ViolationChargeHold, ws, c.ID, "the charge is of cycle %d, which has no cycle row", c.Cycle)
	}
	var holds, finishes []credits.Entry
	for _, e := range entries {
		if e.Type == credits.EntryHold {
			holds = append(holds, e)
		} else {
			finishes = append(finishes, e)
		}
	}
	if total > len(entries) {
		v.add(ViolationChargeFinish, ws, c.ID, "%d ledger entries name the charge, want at most 2", total)
		return
	}
	if len(holds) != 1 {
		v.add(ViolationChargeHold, ws, c.ID, "%d hold entries, want 1 (%s)", len(holds), entryIDs(holds))
	} else if h := holds[0]; h.Amount != -c.Cost || h.Cycle != c.Cycle {
		v.add(ViolationChargeHold, ws, c.ID, "hold entry %s is %+d in cycle %d, want %+d in cycle %d", h.ID, h.Amount, h.Cycle, -c.Cost, c.Cycle)
	}
	if c.Status == credits.StatusHeld {
		if len(finishes) > 0 {
			v.add(ViolationChargeFinish, ws, c.ID, "the charge is held but has finishing entries (%s)", entryIDs(finishes))
		}
		return
	}
	if c.Status != credits.StatusCaptured && c.Status != credits.StatusReleased && c.Status != credits.StatusExpired {
		v.add(ViolationChargeFinish, ws, c.ID, "unknown status %q", c.Status)
		return
	}
	if len(finishes) != 1 {
		v.add(ViolationChargeFinish, ws, c.ID, "the charge is %s with %d finishing entries, want 1 (%s)", c.Status, len(finishes), entryIDs(finishes))
		return
	}
	f := finishes[0]
	typ, amount := credits.EntryCapture, int64(0)
	if c.Status != credits.StatusCaptured {
		typ, amount = credits.EntryRelease, c.Cost // back to available in its own cycle
		if f.Cycle > c.Cycle {
			typ, amount = credits.EntryExpire, 0 // its cycle is over: the credits expired
		}
	}
	if f.Type != typ || f.Amount != amount || f.Cycle < c.Cycle {
		v.add(ViolationChargeFinish, ws, c.ID, "the charge is %s (cycle %d) and finished by %s %+d in cycle %d (%s), want %s %+d",
			c.Status, c.Cycle, f.Type, f.Amount, f.Cycle, f.ID, typ, amount)
	}
	if len(holds) == 1 && f.Seq < holds[0].Seq {
		v.add(ViolationChargeFinish, ws, c.ID, "finishing entry %s comes before hold entry %s", f.ID, holds[0].ID)
	}
}

func (v *verifier) idempotency(ws string, c credits.Charge, recs []IdemRecord) {
	if len(recs) > 1 {
		keys := ""
		for i, r := range recs {
			if i > 0 {
				keys += ", "
			}
			keys += fmt.Sprintf("%q", r.Key)
		}
		v.add(ViolationIdemSharedCharge, ws, c.ID, "%d Idempotency-Keys name the charge (%s); each request makes its own charge", len(recs), keys)
	}
	for _, r := range recs {
		a := answerCharge(r)
		if a.WorkspaceID != c.WorkspaceID || a.Operation != c.Operation || a.Quantity != c.Quantity || a.Cost != c.Cost || !a.CreatedAt.Equal(c.CreatedAt) {
			v.add(ViolationIdemAnswer, ws, r.Key, "the stored answer's charge %s (%s ×%d, cost %d, created %s) differs from the charge (%s ×%d, cost %d, created %s)",
				a.ID, a.Operation, a.Quantity, a.Cost, a.CreatedAt.Format(time.RFC3339Nano), c.Operation, c.Quantity, c.Cost, c.CreatedAt.Format(time.RFC3339Nano))
		}
	}
	if len(recs) == 0 && c.CreatedAt.After(v.now.Add(-credits.IdempotencyTTL+idempotencyClockSkew)) {
		v.add(ViolationChargeNoIdempotency, ws, c.ID, "made %s, within the keys' lifetime, but no Idempotency-Key's stored answer names it",
			c.CreatedAt.Format(time.RFC3339))
	}
}

// answerCharge is the charge of a record's stored answer (zero if none).
func answerCharge(r IdemRecord) credits.Charge {
	if r.Result.Charge == nil {
		return credits.Charge{}
	}
	return *r.Result.Charge
}

func entryIDs(es []credits.Entry) string {
	if len(es) == 0 {
		return "none"
	}
	s := ""
	for i, e := range es {
		if i > 0 {
			s += ", "
		}
		s += e.ID + " " + e.Type
	}
	return s
}

// peeker reads a stream one row at a time, with one row of lookahead.
type peeker[T any] struct {
	s    Stream[T]
	page []T
	done bool
}

func (p *peeker[T]) peek(ctx context.Context) (T, bool, error) {
	var zero T
	for len(p.page) == 0 {
		if p.done {
			return zero, false, nil
		}
		page, err := p.s.Next(ctx)
		if err != nil {
			return zero, false, err
		}
		if len(page) == 0 {
			p.done = true
		}
		p.page = page
	}
	return p.page[0], true, nil
}

func (p *peeker[T]) skip() { p.page = p.page[1:] }

func (p *peeker[T]) next(ctx context.Context) (T, bool, error) {
	x, ok, err := p.peek(ctx)
	if ok {
		p.skip()
	}
	return x, ok, err
}
