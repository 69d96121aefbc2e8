package ledger

import (
	"sort"
	"time"

	"github.com/credits-dev/credits"
)

// The rules live here: commands applied to in-memory state by plain
// functions, with no I/O. The writer loads the rows a batch needs into a
// state, applies each command in order and writes what they changed.
//
// A refused command (402, 409, 400) changes nothing, so one bad command never
// rolls back a batch: every check comes before the first change. Bringing a
// workspace up to now (cycle resets, due hold expiries) is not part of any
// command's refusal: it is a change that was due anyway and is kept.

// state is the rows one batch works on, and what it changed.
type state struct {
	now time.Time
	cat *credits.Catalog

	accounts map[string]*Account
	cycles   map[CycleKey]*credits.Cycle // earlier cycles of loaded charges
	charges  map[string]*credits.Charge
	idem     map[IdemKey]*IdemRecord
	// due holds of an account, earliest first, and the earliest expiry
	// after now among its other holds; loaded only when NextExpiry <= now.
	due       map[string][]*credits.Charge
	nextAfter map[string]time.Time

	newAccounts  map[string]bool
	newCharges   map[string]bool
	dirtyAcc     map[string]bool // balance changed: its cycle row is written
	dirtyWs      map[string]bool // workspace row changed too
	dirtyCycles  map[CycleKey]bool
	dirtyCharges map[string]bool
	dirtyIdem    map[IdemKey]bool
	entries      []credits.Entry
	newIDFunc    func(prefix string) string

	// The batch's answers and changed balances, kept for the next batch's:
	// the writer copies each out (into its caller's channel, into the
	// broker) before it runs the next batch, and nothing keeps the slices.
	results []result
	changed []credits.Balance
}

// clearFor empties s for the next batch, keeping its maps' room: each
// writer goroutine (PostgreSQL runs several) fills its own state batch
// after batch instead of making and growing thirteen maps for each
// (BenchmarkPairs -benchmem: 11,609 -> 10,452 bytes a pair on many
// workspaces, 9,904 -> 9,086 on one). Nothing may keep a reference to the
// maps themselves; what they point to (accounts, charges) is made anew by
// each batch's load, so results and changes that point there stay as they
// were.
func (s *state) clearFor(now time.Time) {
	s.now = now
	clear(s.accounts)
	clear(s.cycles)
	clear(s.charges)
	clear(s.idem)
	clear(s.due)
	clear(s.nextAfter)
	clear(s.newAccounts)
	clear(s.newCharges)
	clear(s.dirtyAcc)
	clear(s.dirtyWs)
	clear(s.dirtyCycles)
	clear(s.dirtyCharges)
	clear(s.dirtyIdem)
	s.entries = nil
}

func newState(now time.Time, cat *credits.Catalog, newID func(string) string) *state {
	return &state{
		now: now, cat: cat, newIDFunc: newID,
		accounts:     map[string]*Account{},
		cycles:       map[CycleKey]*credits.Cycle{},
		charges:      map[string]*credits.Charge{},
		idem:         map[IdemKey]*IdemRecord{},
		due:          map[string][]*credits.Charge{},
		nextAfter:    map[string]time.Time{},
		newAccounts:  map[string]bool{},
		newCharges:   map[string]bool{},
		dirtyAcc:     map[string]bool{},
		dirtyWs:      map[string]bool{},
		dirtyCycles:  map[CycleKey]bool{},
		dirtyCharges: map[string]bool{},
		dirtyIdem:    map[IdemKey]bool{},
	}
}

// changesOf collects what the batch wrote, in a deterministic order;
// dirtyAcc is sortedKeys(s.dirtyAcc), which the writer needs again for the
// balances it publishes.
//
// Each slice is made at its final size: they live until the batch is in the
// store's tables, and doubling appends would leave about as much garbage
// as they keep (credits bench -memprofile).
func (s *state) changesOf(dirtyAcc []string) *Changes {
	c := &Changes{Entries: s.entries}
	var nNew, nWs int
	for _, id := range dirtyAcc {
		switch {
		case s.newAccounts[id]:
			nNew++
		case s.dirtyWs[id]:
			nWs++
		}
	}
	if nNew > 0 {
		c.NewWorkspaces = make([]Account, 0, nNew)
	}
	if nWs > 0 {
		c.Accounts = make([]Account, 0, nWs)
	}
	if n := len(dirtyAcc) + len(s.dirtyCycles); n > 0 {
		c.Cycles = make([]CycleRow, 0, n)
	}
	var nNewCh int
	for id := range s.dirtyCharges {
		if s.newCharges[id] {
			nNewCh++
		}
	}
	if nNewCh > 0 {
		c.NewCharges = make([]credits.Charge, 0, nNewCh)
	}
	if n := len(s.dirtyCharges) - nNewCh; n > 0 {
		c.Charges = make([]credits.Charge, 0, n)
	}
	if len(s.dirtyIdem) > 0 {
		c.Idempotency = make([]IdemRecord, 0, len(s.dirtyIdem))
	}
	for _, id := range dirtyAcc {
		switch {
		case s.newAccounts[id]:
			c.NewWorkspaces = append(c.NewWorkspaces, *s.accounts[id])
		case s.dirtyWs[id]:
			c.Accounts = append(c.Accounts, *s.accounts[id])
		}
		// An account's current cycle is always written with it.
		a := s.accounts[id]
		c.Cycles = append(c.Cycles, CycleRow{WorkspaceID: id, Cycle: a.Cycle})
	}
	keys := make([]CycleKey, 0, len(s.dirtyCycles))
	for k := range s.dirtyCycles {
		keys = append(keys, k)
	}
	SortCycleKeys(keys)
	for _, k := range keys {
		c.Cycles = append(c.Cycles, CycleRow{WorkspaceID: k.WorkspaceID, Cycle: *s.cycles[k]})
	}
	for _, id := range sortedKeys(s.dirtyCharges) {
		if s.newCharges[id] {
			c.NewCharges = append(c.NewCharges, *s.charges[id])
		} else {
			c.Charges = append(c.Charges, *s.charges[id])
		}
	}
	for k := range s.dirtyIdem {
		c.Idempotency = append(c.Idempotency, *s.idem[k])
	}
	sort.Slice(c.Idempotency, func(i, j int) bool {
		a, b := c.Idempotency[i], c.Idempotency[j]
		if a.WorkspaceID != b.WorkspaceID {
			return a.WorkspaceID < b.WorkspaceID
		}
		return a.Key < b.Key
	})
	return c
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// touchWs marks a workspace row (plan, pending plan, cycle, next expiry) as
// changed, with its balance.
func (s *state) touchWs(id string) {
	s.dirtyWs[id] = true
	s.dirtyAcc[id] = true
}

func (s *state) balance(a *Account) credits.Balance {
	p, _ := s.cat.Plan(a.Workspace.Plan)
	return credits.Balance{
		WorkspaceID:    a.Workspace.ID,
		Plan:           a.Workspace.Plan,
		MonthlyCredits: p.MonthlyCredits,
		Granted:        a.Cycle.Granted,
		Available:      a.Cycle.Available,
		Held:           a.Cycle.Held,
		Used:           a.Cycle.Used,
		CycleStart:     a.Cycle.Start,
		CycleEnd:       a.Cycle.End,
	}
}

func (s *state) entry(a *Account, at time.Time, typ string, amount int64, ch *credits.Charge) {
	e := credits.Entry{
		WorkspaceID:    a.Workspace.ID,
		Cycle:          a.Cycle.N,
		At:             at,
		Type:           typ,
		Amount:         amount,
		AvailableAfter: a.Cycle.Available,
	}
	if ch != nil {
		e.ChargeID = ch.ID
		e.Operation = ch.Operation
		if ch.MemberID != nil {
			e.MemberID = *ch.MemberID
		}
	}
	s.entries = append(s.entries, e)
	s.dirtyAcc[a.Workspace.ID] = true
}

// newCycle is cycle n of an anchor, with nothing granted yet.
func newCycle(anchor time.Time, n int) credits.Cycle {
	return credits.Cycle{N: n, Start: credits.CycleStart(anchor, n), End: credits.CycleStart(anchor, n+1)}
}

// maxCatchUpCycles bounds how many missed resets one read applies (100 years).
const maxCatchUpCycles = 1200

// advance brings an account up to now: due hold expiries and cycle resets,
// each at its own time, in time order.
func (s *state) advance(a *Account) {
	if a.Cycle.End.After(s.now) && (a.NextExpiry.IsZero() || a.NextExpiry.After(s.now)) {
		return
	}
	id := a.Workspace.ID
	due := s.due[id]
	for i := 0; i < maxCatchUpCycles*2+len(due); i++ {
		for len(due) > 0 && due[0].Status != credits.StatusHeld {
			due = due[1:] // finished earlier in this batch
		}
		reset := a.Cycle.End
		if len(due) > 0 && !due[0].ExpiresAt.After(reset) && !due[0].ExpiresAt.After(s.now) {
			s.expireHold(a, due[0], due[0].ExpiresAt)
			due = due[1:]
			continue
		}
		if !reset.After(s.now) {
			s.reset(a)
			continue
		}
		break
	}
	s.due[id] = due
	if !a.NextExpiry.IsZero() && !a.NextExpiry.After(s.now) {
		// Every hold due by now is finished; the next one is the earliest
		// expiry after now the load saw (holds made since are after it or
		// lowered NextExpiry themselves).
		a.NextExpiry = s.nextAfter[id]
		s.touchWs(id)
	}
}

// reset ends the current cycle: its available credits expire, a pending plan
// takes effect, and the plan's monthly credits are granted.
func (s *state) reset(a *Account) {
	at := a.Cycle.End
	if a.Cycle.Available > 0 {
		amt := a.Cycle.Available
		a.Cycle.Available = 0
		a.Cycle.Expired += amt
		s.entry(a, at, credits.EntryExpire, -amt, nil)
	}
	// The old cycle keeps its held credits: a hold belongs to its cycle.
	old := a.Cycle
	k := CycleKey{a.Workspace.ID, old.N}
	s.cycles[k] = &old
	s.dirtyCycles[k] = true

	if a.Workspace.PendingPlan != nil {
		a.Workspace.Plan = *a.Workspace.PendingPlan
		a.Workspace.PendingPlan = nil
	}
	s.touchWs(a.Workspace.ID) // its cycle moves on
	p, _ := s.cat.Plan(a.Workspace.Plan)
	a.Cycle = newCycle(a.Workspace.CycleAnchor, old.N+1)
	a.Cycle.Granted = p.MonthlyCredits
	a.Cycle.Available = p.MonthlyCredits
	s.entry(a, at, credits.EntryGrant, p.MonthlyCredits, nil)
}

// finishHold moves a held charge out of the held state. Its credits go to
// used (capture), back to available (release or expiry in its own cycle), or
// expire (release or expiry after its cycle ended).
func (s *state) finishHold(a *Account, ch *credits.Charge, status string, at time.Time) {
	ch.Status = status
	ch.FinalizedAt = at
	s.dirtyCharges[ch.ID] = true
	if ch.Cycle == a.Cycle.N {
		a.Cycle.Held -= ch.Cost
		if status == credits.StatusCaptured {
			a.Cycle.Used += ch.Cost
			s.entry(a, at, credits.EntryCapture, 0, ch)
		} else {
			a.Cycle.Available += ch.Cost
			s.entry(a, at, credits.EntryRelease, ch.Cost, ch)
		}
		return
	}
	k := CycleKey{a.Workspace.ID, ch.Cycle}
	old := s.cycles[k] // the writer loads the cycle of every loaded charge
	old.Held -= ch.Cost
	if status == credits.StatusCaptured {
		old.Used += ch.Cost
		s.entry(a, at, credits.EntryCapture, 0, ch)
	} else {
		old.Expired += ch.Cost
		s.entry(a, at, credits.EntryExpire, 0, ch)
	}
	s.dirtyCycles[k] = true
}

func (s *state) expireHold(a *Account, ch *credits.Charge, at time.Time) {
	s.finishHold(a, ch, credits.StatusExpired, at)
}

// command is one write. Each kind names the rows it needs so the writer can
// load them before applying.
type command interface {
	apply(s *state) result
}

// result is a command's answer.
type result struct {
	Workspace *credits.Workspace
	Balance   *credits.Balance
	Charge    ChargeResult
	Err       error
}

type createWorkspaceCmd struct {
	ws credits.Workspace // ID set, CreatedAt and anchor defaulted
}

func (c *createWorkspaceCmd) apply(s *state) result {
	if _, ok := s.accounts[c.ws.ID]; ok {
		return result{Err: credits.Errorf(credits.CodeConflict, "workspace %q already exists", c.ws.ID)}
	}
	p, _ := s.cat.Plan(c.ws.Plan)
	ws := c.ws
	ws.CreatedAt = s.now
	n := credits.CycleAt(ws.CycleAnchor, s.now)
	a := &Account{Workspace: ws, Cycle: newCycle(ws.CycleAnchor, n)}
	a.Cycle.Granted = p.MonthlyCredits
	a.Cycle.Available = p.MonthlyCredits
	s.accounts[ws.ID] = a
	s.newAccounts[ws.ID] = true
	s.entry(a, s.now, credits.EntryGrant, p.MonthlyCredits, nil)
	b := s.balance(a)
	return result{Workspace: &a.Workspace, Balance: &b}
}

type holdCmd struct {
	p           HoldParams // validated
	cost        int64
	fingerprint string
}

func (c *holdCmd) apply(s *state) result {
	a, ok := s.accounts[c.p.WorkspaceID]
	if !ok {
		return result{Err: credits.NotFound("workspace", c.p.WorkspaceID)}
	}
	ik := IdemKey{c.p.WorkspaceID, c.p.IdempotencyKey}
	if rec, ok := s.idem[ik]; ok && s.now.Sub(rec.CreatedAt) < credits.IdempotencyTTL {
		if rec.Fingerprint != c.fingerprint {
			return result{Err: &credits.Error{Code: credits.CodeIdempotencyKeyReused, Field: "Idempotency-Key",
				Message: "this Idempotency-Key was used with a different request body"}}
		}
		r := rec.Result
		if r.Err != nil {
			return result{Err: r.Err}
		}
		return result{Charge: r}
	}
	s.advance(a)
	var r ChargeResult
	if a.Cycle.Available < c.cost {
		r.Err = &credits.Error{
			Code:    credits.CodeInsufficientCredits,
			Message: "not enough credits for this operation",
			Insufficient: &credits.Insufficient{
				Balance:   a.Cycle.Available,
				Required:  c.cost,
				Shortfall: c.cost - a.Cycle.Available,
				Plan:      a.Workspace.Plan,
				Upgrade:   s.cat.UpgradeFor(a.Workspace.Plan, a.Cycle.Available, c.cost),
			},
		}
	} else {
		ch := &credits.Charge{
			ID:          s.newIDFunc("ch_"),
			WorkspaceID: a.Workspace.ID,
			Operation:   c.p.Operation,
			Quantity:    c.p.Quantity,
			Cost:        c.cost,
			Status:      credits.StatusHeld,
			MemberID:    c.p.MemberID,
			Metadata:    c.p.Metadata,
			CreatedAt:   s.now,
			ExpiresAt:   s.now.Add(time.Duration(c.p.HoldSeconds) * time.Second),
			Cycle:       a.Cycle.N,
		}
		s.charges[ch.ID] = ch
		s.dirtyCharges[ch.ID] = true
		s.newCharges[ch.ID] = true
		a.Cycle.Available -= c.cost
		a.Cycle.Held += c.cost
		s.entry(a, s.now, credits.EntryHold, -c.cost, ch)
		if c.p.Capture {
			s.finishHold(a, ch, credits.StatusCaptured, s.now)
		} else if a.NextExpiry.IsZero() || ch.ExpiresAt.Before(a.NextExpiry) {
			a.NextExpiry = ch.ExpiresAt
			s.touchWs(a.Workspace.ID)
		}
		snap := *ch
		b := s.balance(a)
		r = ChargeResult{Charge: &snap, Balance: &b}
	}
	s.idem[ik] = &IdemRecord{WorkspaceID: ik.WorkspaceID, Key: ik.Key, Fingerprint: c.fingerprint, CreatedAt: s.now, Result: r}
	s.dirtyIdem[ik] = true
	if r.Err != nil {
		return result{Err: r.Err}
	}
	return result{Charge: r}
}

// finishCmd captures or releases a held charge by id.
type finishCmd struct {
	chargeID string
	status   string // captured or released
}

func (c *finishCmd) apply(s *state) result {
	ch, ok := s.charges[c.chargeID]
	if !ok {
		return result{Err: credits.NotFound("charge", c.chargeID)}
	}
	a := s.accounts[ch.WorkspaceID]
	s.advance(a) // a hold past its expiry is expired before anything else
	switch ch.Status {
	case credits.StatusHeld:
		s.finishHold(a, ch, c.status, s.now)
	case c.status:
		// Again: the same answer, nothing changes.
	default:
		return result{Err: credits.Errorf(credits.CodeChargeNotHeld, "charge %s is %s, not held", ch.ID, ch.Status)}
	}
	snap := *ch
	b := s.balance(a)
	return result{Charge: ChargeResult{Charge: &snap, Balance: &b}}
}

// touchCmd brings a workspace up to now; reads use it when a reset or a hold
// expiry is due.
type touchCmd struct{ workspaceID string }

func (c *touchCmd) apply(s *state) result {
	a, ok := s.accounts[c.workspaceID]
	if !ok {
		return result{Err: credits.NotFound("workspace", c.workspaceID)}
	}
	s.advance(a)
	b := s.balance(a)
	return result{Workspace: &a.Workspace, Balance: &b}
}

type changePlanCmd struct {
	workspaceID string
	plan        string // known to the catalog
}

func (c *changePlanCmd) apply(s *state) result {
	a, ok := s.accounts[c.workspaceID]
	if !ok {
		return result{Err: credits.NotFound("workspace", c.workspaceID)}
	}
	s.advance(a)
	ws := &a.Workspace
	switch {
	case c.plan == ws.Plan:
		// Asking for the plan one is on keeps it: a pending downgrade is
		// dropped.
		if ws.PendingPlan != nil {
			ws.PendingPlan = nil
			s.touchWs(ws.ID)
		}
	case s.cat.IsUpgrade(ws.Plan, c.plan):
		cur, _ := s.cat.Plan(ws.Plan)
		next, _ := s.cat.Plan(c.plan)
		diff := next.MonthlyCredits - cur.MonthlyCredits
		ws.Plan = c.plan
		ws.PendingPlan = nil
		s.touchWs(ws.ID)
		a.Cycle.Granted += diff
		a.Cycle.Available += diff
		s.entry(a, s.now, credits.EntryUpgrade, diff, nil)
	default:
		p := c.plan
		ws.PendingPlan = &p
		s.touchWs(ws.ID)
	}
	w := *ws
	b := s.balance(a)
	return result{Workspace: &w, Balance: &b}
}

type adjustCmd struct {
	workspaceID string
	amount      int64
	reason      string
}

func (c *adjustCmd) apply(s *state) result {
	a, ok := s.accounts[c.workspaceID]
	if !ok {
		return result{Err: credits.NotFound("workspace", c.workspaceID)}
	}
	s.advance(a)
	if a.Cycle.Available+c.amount < 0 {
		return result{Err: credits.Invalid("amount", "an adjustment of %d would take available (%d) below zero", c.amount, a.Cycle.Available)}
	}
	a.Cycle.Granted += c.amount
	a.Cycle.Available += c.amount
	s.entry(a, s.now, credits.EntryAdjust, c.amount, nil)
	s.entries[len(s.entries)-1].Reason = c.reason
	b := s.balance(a)
	return result{Workspace: &a.Workspace, Balance: &b}
}
