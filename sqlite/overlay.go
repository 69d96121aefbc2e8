package sqlite

import (
	"sort"
	"sync"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// The overlay is what the journal holds and the tables do not yet: every
// row a committed batch wrote, newest version only, until the materializer
// has copied it into the tables. Every read looks here first and at the
// tables second. That order is what makes it safe: a row leaves the overlay
// only after the transaction that put it in the tables has committed, so a
// row missing from the overlay at the first look is in the tables at the
// second.

type ver[T any] struct {
	v     T
	batch uint64 // the batch that wrote this version
}

// wsRow is a workspaces table row.
type wsRow struct {
	ws         credits.Workspace
	cycle      int
	nextExpiry time.Time
}

// pendingWS is one workspace's rows in the overlay.
type pendingWS struct {
	row     *ver[wsRow]
	cycles  rows[int, ver[credits.Cycle]]
	charges rows[string, ver[credits.Charge]]
	idem    rows[string, ver[ledger.IdemRecord]]
	entries []credits.Entry // ascending seq
}

// maxSpare bounds the emptied pendingWS kept for reuse. A workspace leaves
// the overlay each time the tables catch up with it, and with thousands of
// busy workspaces its rows (maps then, about a kilobyte each, allocated at
// a map's first row) were 14% of all the engine's allocations: the garbage
// collector's work, measured with credits bench -memprofile. Kept, one
// costs at most the room of eight rows of each kind.
const maxSpare = 1024

func (p *pendingWS) empty() bool {
	return p.row == nil && p.cycles.len() == 0 && p.charges.len() == 0 && p.idem.len() == 0 && len(p.entries) == 0
}

type overlay struct {
	mu       sync.RWMutex
	ws       map[string]*pendingWS
	chargeWS map[string]string // charge id -> its workspace, for charges in the overlay
	spare    []*pendingWS      // emptied, maps cleared, for pending to reuse
}

func newOverlay() *overlay {
	return &overlay{ws: map[string]*pendingWS{}, chargeWS: map[string]string{}}
}

func (o *overlay) pending(id string) *pendingWS {
	p := o.ws[id]
	if p == nil {
		if n := len(o.spare); n > 0 {
			p = o.spare[n-1]
			o.spare[n-1] = nil
			o.spare = o.spare[:n-1]
		} else {
			p = &pendingWS{}
		}
		o.ws[id] = p
	}
	return p
}

// retire removes an empty workspace from the overlay, keeping it for reuse.
func (o *overlay) retire(id string, p *pendingWS) {
	delete(o.ws, id)
	if len(o.spare) >= maxSpare {
		return
	}
	p.cycles.reset()
	p.charges.reset()
	p.idem.reset()
	p.entries = nil
	o.spare = append(o.spare, p)
}

// add records a committed batch.
func (o *overlay) add(batch uint64, c *ledger.Changes) {
	o.mu.Lock()
	defer o.mu.Unlock()
	addAccount := func(a *ledger.Account) {
		p := o.pending(a.Workspace.ID)
		p.row = &ver[wsRow]{wsRow{a.Workspace, a.Cycle.N, a.NextExpiry}, batch}
	}
	for i := range c.NewWorkspaces {
		addAccount(&c.NewWorkspaces[i])
	}
	for i := range c.Accounts {
		addAccount(&c.Accounts[i])
	}
	for _, r := range c.Cycles {
		o.pending(r.WorkspaceID).cycles.set(r.Cycle.N, ver[credits.Cycle]{r.Cycle, batch})
	}
	addCharge := func(ch *credits.Charge) {
		o.pending(ch.WorkspaceID).charges.set(ch.ID, ver[credits.Charge]{*ch, batch})
		o.chargeWS[ch.ID] = ch.WorkspaceID
	}
	for i := range c.NewCharges {
		addCharge(&c.NewCharges[i])
	}
	for i := range c.Charges {
		addCharge(&c.Charges[i])
	}
	for _, e := range c.Entries {
		p := o.pending(e.WorkspaceID)
		p.entries = append(p.entries, e)
	}
	for _, r := range c.Idempotency {
		o.pending(r.WorkspaceID).idem.set(r.Key, ver[ledger.IdemRecord]{r, batch})
	}
}

// drop removes what the tables now hold: the rows the window's batches
// wrote, unless a later batch wrote them again.
//
// It takes the lock for a few batches at a time, not the whole window, so
// the writer and readers wait microseconds, not milliseconds. Each part
// stands alone: a row goes only if no later batch wrote it again.
func (o *overlay) drop(window []*record) {
	if len(window) == 0 {
		return
	}
	last := window[len(window)-1].Batch
	for len(window) > 0 {
		n := min(len(window), 32)
		o.dropPart(window[:n], last)
		window = window[n:]
	}
}

func (o *overlay) dropPart(window []*record, last uint64) {
	maxSeq := map[string]int64{}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range window {
		c := r.Changes
		dropAccount := func(id string) {
			if p := o.ws[id]; p != nil && p.row != nil && p.row.batch <= last {
				p.row = nil
			}
		}
		for i := range c.NewWorkspaces {
			dropAccount(c.NewWorkspaces[i].Workspace.ID)
		}
		for i := range c.Accounts {
			dropAccount(c.Accounts[i].Workspace.ID)
		}
		for _, cr := range c.Cycles {
			if p := o.ws[cr.WorkspaceID]; p != nil {
				if v, ok := p.cycles.get(cr.Cycle.N); ok && v.batch <= last {
					p.cycles.del(cr.Cycle.N)
				}
			}
		}
		dropCharge := func(ch *credits.Charge) {
			if p := o.ws[ch.WorkspaceID]; p != nil {
				if v, ok := p.charges.get(ch.ID); ok && v.batch <= last {
					p.charges.del(ch.ID)
					delete(o.chargeWS, ch.ID)
				}
			}
		}
		for i := range c.NewCharges {
			dropCharge(&c.NewCharges[i])
		}
		for i := range c.Charges {
			dropCharge(&c.Charges[i])
		}
		for _, e := range c.Entries {
			if e.Seq > maxSeq[e.WorkspaceID] {
				maxSeq[e.WorkspaceID] = e.Seq
			}
		}
		for _, k := range c.Idempotency {
			if p := o.ws[k.WorkspaceID]; p != nil {
				if v, ok := p.idem.get(k.Key); ok && v.batch <= last {
					p.idem.del(k.Key)
				}
			}
		}
	}
	// Entries are only appended, in seq order: the materialized ones are a
	// prefix.
	for id, seq := range maxSeq {
		if p := o.ws[id]; p != nil {
			n := sort.Search(len(p.entries), func(i int) bool { return p.entries[i].Seq > seq })
			// Reslice, not copy: a hot workspace has thousands pending.
			// The dropped prefix is freed when append next reallocates.
			if p.entries = p.entries[n:]; len(p.entries) == 0 {
				p.entries = nil
			}
		}
	}
	for _, r := range window {
		forTouchedWorkspaces(r.Changes, func(id string) {
			if p := o.ws[id]; p != nil && p.empty() {
				o.retire(id, p)
			}
		})
	}
}

// forTouchedWorkspaces calls f with the workspace of each row c wrote (a
// workspace once per row).
func forTouchedWorkspaces(c *ledger.Changes, f func(id string)) {
	for i := range c.NewWorkspaces {
		f(c.NewWorkspaces[i].Workspace.ID)
	}
	for i := range c.Accounts {
		f(c.Accounts[i].Workspace.ID)
	}
	for i := range c.Cycles {
		f(c.Cycles[i].WorkspaceID)
	}
	for i := range c.NewCharges {
		f(c.NewCharges[i].WorkspaceID)
	}
	for i := range c.Charges {
		f(c.Charges[i].WorkspaceID)
	}
	for i := range c.Entries {
		f(c.Entries[i].WorkspaceID)
	}
	for i := range c.Idempotency {
		f(c.Idempotency[i].WorkspaceID)
	}
}

// wsView is what the overlay knows of one workspace's row and cycles.
type wsView struct {
	row    *wsRow
	cycles map[int]credits.Cycle
}

func (o *overlay) workspace(id string) wsView {
	o.mu.RLock()
	defer o.mu.RUnlock()
	p := o.ws[id]
	if p == nil {
		return wsView{}
	}
	var v wsView
	if p.row != nil {
		r := p.row.v
		v.row = &r
	}
	if p.cycles.len() > 0 {
		v.cycles = make(map[int]credits.Cycle, p.cycles.len())
		for n, c := range p.cycles.all() {
			v.cycles[n] = c.v
		}
	}
	return v
}

func (o *overlay) charge(id string) (credits.Charge, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	ws, ok := o.chargeWS[id]
	if !ok {
		return credits.Charge{}, false
	}
	v, ok := o.ws[ws].charges.get(id)
	return v.v, ok
}

func (o *overlay) cycle(k ledger.CycleKey) (credits.Cycle, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	p := o.ws[k.WorkspaceID]
	if p == nil {
		return credits.Cycle{}, false
	}
	v, ok := p.cycles.get(k.N)
	return v.v, ok
}

func (o *overlay) idem(k ledger.IdemKey) (ledger.IdemRecord, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	p := o.ws[k.WorkspaceID]
	if p == nil {
		return ledger.IdemRecord{}, false
	}
	v, ok := p.idem.get(k.Key)
	return v.v, ok
}

// charges returns a copy of a workspace's charges in the overlay.
func (o *overlay) charges(ws string) map[string]credits.Charge {
	o.mu.RLock()
	defer o.mu.RUnlock()
	p := o.ws[ws]
	if p == nil || p.charges.len() == 0 {
		return nil
	}
	out := make(map[string]credits.Charge, p.charges.len())
	for id, v := range p.charges.all() {
		out[id] = v.v
	}
	return out
}

// entries returns up to limit of a workspace's overlay entries with
// Seq < before, newest first.
func (o *overlay) entries(ws string, before int64, limit int) []credits.Entry {
	o.mu.RLock()
	defer o.mu.RUnlock()
	p := o.ws[ws]
	if p == nil {
		return nil
	}
	var out []credits.Entry
	for i := len(p.entries) - 1; i >= 0 && len(out) < limit; i-- {
		if p.entries[i].Seq < before {
			out = append(out, p.entries[i])
		}
	}
	return out
}

// hasEntry reports whether the overlay holds a workspace's entry seq.
func (o *overlay) hasEntry(ws string, seq int64) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	p := o.ws[ws]
	if p == nil {
		return false
	}
	i := sort.Search(len(p.entries), func(i int) bool { return p.entries[i].Seq >= seq })
	return i < len(p.entries) && p.entries[i].Seq == seq
}

// dueWorkspaces lists workspaces with a held overlay charge expiring by now.
func (o *overlay) dueWorkspaces(now time.Time) []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []string
	for id, p := range o.ws {
		for _, c := range p.charges.all() {
			if c.v.Status == credits.StatusHeld && !c.v.ExpiresAt.After(now) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}
