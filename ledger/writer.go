package ledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/credits-dev/credits"
)

// The writer is the only goroutine of a process that writes money. It takes
// the commands waiting in its queue (up to MaxBatch), applies them in one
// store transaction, commits, and only then answers each caller: group
// commit. With one caller a batch is one command; the path is the same.

type request struct {
	cmd  command
	done chan result
}

func (e *Engine) run(busy *busyClock) {
	batch := make([]request, 0, e.opts.MaxBatch)
	// Each writer goroutine refills its own state (see state.clearFor).
	s := newState(e.now(), &e.cat, newID)
	for {
		select {
		case r := <-e.queue:
			batch = append(batch[:0], r)
		case <-e.stop:
			return
		}
		// Let the callers answered by the last commit run before taking
		// the queue: they submit their next commands in that moment, and
		// the batch carries them. Without it batches stayed at ~8
		// commands at 64 callers, each paying an fsync; with it ~48, and
		// `credits bench` went from 15,700 to 27,200 pairs/s (many) and
		// from 25,000 to 46,600 (hot) on SQLite.
		runtime.Gosched()
	fill:
		for len(batch) < e.opts.MaxBatch {
			select {
			case r := <-e.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		e.commit(s, batch, busy)
	}
}

// errUnavailable answers every command of a batch whose transaction failed:
// nothing of it was committed. The cause is logged, not shown to clients.
var errUnavailable = &credits.Error{Code: credits.CodeUnavailable, Message: "the store is unavailable; nothing was charged"}

func (e *Engine) commit(s *state, batch []request, busy *busyClock) {
	busy.begin()
	e.batches.Add(1)
	e.commands.Add(int64(len(batch)))
	results, changed, err := e.safeRunBatch(s, batch)
	// Counted before any answer: a caller holding its answer finds its
	// batch in Stats.
	busy.end()
	if err != nil {
		e.log.Error("batch failed; nothing of it was committed", "commands", len(batch), "err", err)
		for _, r := range batch {
			r.done <- result{Err: errUnavailable}
		}
		return
	}
	// Publish before answering: when a call returns, its balance is on its
	// way to the streams (at once, or within the broker's fan-out
	// interval), and a stream opened after the call does not get that
	// balance again as a change. Publishing is cheap: the broker folds
	// fan-outs.
	if !e.listening {
		for _, b := range changed {
			e.broker.publish(b)
		}
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

// safeRunBatch turns a panic in a batch (a bug) into an error for its
// callers, so one bad command cannot stop the writer. The transaction rolls
// back: nothing of the batch is committed.
func (e *Engine) safeRunBatch(s *state, batch []request) (results []result, changed []credits.Balance, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in batch: %v\n%s", v, debug.Stack())
		}
	}()
	return e.runBatch(s, batch)
}

// runBatch loads, applies, writes and commits one batch. It returns each
// command's result and the balances that changed.
func (e *Engine) runBatch(s *state, batch []request) ([]result, []credits.Balance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.BatchTimeout)
	defer cancel()
	tx, err := e.store.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	s.clearFor(e.now())
	s.entries = make([]credits.Entry, 0, len(batch)) // most commands write one
	if err := e.load(ctx, tx, s, batch); err != nil {
		return nil, nil, err
	}
	results := slices.Grow(s.results[:0], len(batch))[:len(batch)]
	clear(results[:cap(results)]) // the last batch's answers: let go of them
	s.results = results
	for i, r := range batch {
		results[i] = r.cmd.apply(s)
	}
	dirty := sortedKeys(s.dirtyAcc)
	ch := s.changesOf(dirty)
	if ch.Empty() {
		return results, nil, nil
	}
	if err := tx.Write(ctx, ch); err != nil {
		e.forget(s)
		return nil, nil, err
	}
	if err := tx.Commit(); err != nil {
		e.forget(s)
		return nil, nil, err
	}
	if e.cache != nil {
		e.cache.committed(s)
	}
	changed := s.changed[:0]
	for _, id := range dirty {
		changed = append(changed, s.balance(s.accounts[id]))
	}
	s.changed = changed
	return results, changed, nil
}

// load reads every row the batch's commands need into s.
func (e *Engine) load(ctx context.Context, tx Tx, s *state, batch []request) error {
	var chargeIDs []string
	wsSet := map[string]bool{}
	var idemKeys []IdemKey
	for _, r := range batch {
		switch c := r.cmd.(type) {
		case *createWorkspaceCmd:
			wsSet[c.ws.ID] = true
		case *holdCmd:
			wsSet[c.p.WorkspaceID] = true
			idemKeys = append(idemKeys, IdemKey{c.p.WorkspaceID, c.p.IdempotencyKey})
		case *finishCmd:
			chargeIDs = append(chargeIDs, c.chargeID)
		case *touchCmd:
			wsSet[c.workspaceID] = true
		case *changePlanCmd:
			wsSet[c.workspaceID] = true
		case *adjustCmd:
			wsSet[c.workspaceID] = true
		default:
			return errors.New("ledger: unknown command")
		}
	}
	chargeIDs = e.cachedCharges(s, chargeIDs)
	if bl, ok := tx.(BatchLoader); ok {
		if err := e.loadAtOnce(ctx, bl, s, wsSet, chargeIDs, idemKeys); err != nil {
			return err
		}
	} else if err := e.loadInSteps(ctx, tx, s, wsSet, chargeIDs, idemKeys); err != nil {
		return err
	}
	for id, a := range s.accounts {
		if a.Cycle.End.After(s.now) && (a.NextExpiry.IsZero() || a.NextExpiry.After(s.now)) {
			continue
		}
		due, next, err := tx.DueHolds(ctx, id, s.now)
		if err != nil {
			return err
		}
		list := make([]*credits.Charge, 0, len(due))
		for _, c := range due {
			if have, ok := s.charges[c.ID]; ok {
				list = append(list, have)
				continue
			}
			c := c
			s.charges[c.ID] = &c
			list = append(list, &c)
		}
		s.due[id] = list
		s.nextAfter[id] = next
	}
	// Charges made in an earlier cycle finish against that cycle's row.
	var cks []CycleKey
	seen := map[CycleKey]bool{}
	for _, c := range s.charges {
		a, ok := s.accounts[c.WorkspaceID]
		k := CycleKey{c.WorkspaceID, c.Cycle}
		if !ok || c.Status != credits.StatusHeld || seen[k] {
			continue
		}
		// Also the current cycle: a reset in this batch may make it old,
		// and then the reset's copy is used instead.
		if c.Cycle < a.Cycle.N {
			seen[k] = true
			cks = append(cks, k)
		}
	}
	if len(cks) > 0 {
		cycles, err := tx.Cycles(ctx, cks)
		if err != nil {
			return err
		}
		for k, c := range cycles {
			c := c
			s.cycles[k] = &c
		}
	}
	return nil
}

// loadInSteps reads a batch's charges (to learn their workspaces), then
// locks and reads the accounts, the charges again under the locks, and the
// idempotency keys.
func (e *Engine) loadInSteps(ctx context.Context, tx Tx, s *state, wsSet map[string]bool, chargeIDs []string, idemKeys []IdemKey) error {
	if len(chargeIDs) > 0 {
		// A first read, only to learn which workspaces to lock.
		chs, err := tx.Charges(ctx, chargeIDs)
		if err != nil {
			return err
		}
		for _, c := range chs {
			wsSet[c.WorkspaceID] = true
		}
	}
	for _, c := range s.charges {
		wsSet[c.WorkspaceID] = true
	}
	ids := sortedKeys(wsSet)
	// The batch's accounts live in one slice (room for all of them, so it
	// never moves): one allocation a batch instead of one per account and
	// a map of copies.
	slab := make([]Account, 0, len(ids))
	ids = e.cachedAccounts(s, &slab, ids)
	if len(ids) > 0 {
		loaded, err := tx.Accounts(ctx, ids) // locks them, on a store with many writers
		if err != nil {
			return err
		}
		for id, a := range loaded {
			slab = append(slab, a)
			s.accounts[id] = &slab[len(slab)-1]
		}
	}
	if len(chargeIDs) > 0 {
		// Read the charges again under their workspaces' locks: another
		// instance may have finished one since the first read.
		chs, err := tx.Charges(ctx, chargeIDs)
		if err != nil {
			return err
		}
		if err := putLocked(s, chs); err != nil {
			return err
		}
	}
	if len(idemKeys) > 0 {
		recs, err := tx.Idempotency(ctx, idemKeys)
		if err != nil {
			return err
		}
		putIdem(s, recs)
	}
	return nil
}

// loadAtOnce reads the same with one LoadBatch.
func (e *Engine) loadAtOnce(ctx context.Context, bl BatchLoader, s *state, wsSet map[string]bool, chargeIDs []string, idemKeys []IdemKey) error {
	for _, c := range s.charges { // cached charges: their workspaces too
		wsSet[c.WorkspaceID] = true
	}
	ids := sortedKeys(wsSet)
	// As in loadInSteps; the charges' workspaces come back too.
	slab := make([]Account, 0, len(ids)+len(chargeIDs))
	ids = e.cachedAccounts(s, &slab, ids)
	if len(ids) == 0 && len(chargeIDs) == 0 && len(idemKeys) == 0 {
		return nil
	}
	got, err := bl.LoadBatch(ctx, ids, chargeIDs, idemKeys)
	if err != nil {
		return err
	}
	for id, a := range got.Accounts {
		if _, ok := s.accounts[id]; ok {
			continue // cached
		}
		slab = append(slab, a)
		s.accounts[id] = &slab[len(slab)-1]
	}
	if err := putLocked(s, got.Charges); err != nil {
		return err
	}
	putIdem(s, got.Idem)
	return nil
}

// putLocked puts charges read under their workspaces' locks into s.
func putLocked(s *state, chs map[string]credits.Charge) error {
	for id, c := range chs {
		if _, locked := s.accounts[c.WorkspaceID]; !locked {
			return fmt.Errorf("charge %s moved to workspace %s", id, c.WorkspaceID)
		}
		c := c
		s.charges[id] = &c
	}
	return nil
}

func putIdem(s *state, recs map[IdemKey]IdemRecord) {
	for k, r := range recs {
		r := r
		s.idem[k] = &r
	}
}

// cachedCharges puts the cached held charges among ids into s and returns
// the ids still to read.
func (e *Engine) cachedCharges(s *state, ids []string) []string {
	if e.cache == nil {
		return ids
	}
	var missing []string
	for _, id := range ids {
		if c, ok := e.cache.charge(id); ok {
			s.charges[id] = &c
			continue
		}
		missing = append(missing, id)
	}
	return missing
}

// cachedAccounts puts the cached accounts among ids into s, their copies
// appended to slab, and returns the ids still to read.
func (e *Engine) cachedAccounts(s *state, slab *[]Account, ids []string) []string {
	if e.cache == nil {
		return ids
	}
	missing := ids[:0]
	for _, id := range ids {
		if a, ok := e.cache.account(id); ok {
			*slab = append(*slab, a)
			s.accounts[id] = &(*slab)[len(*slab)-1]
			continue
		}
		missing = append(missing, id)
	}
	return missing
}

func (e *Engine) forget(s *state) {
	if e.cache != nil {
		e.cache.forget(s)
	}
}

// doneChans holds answer channels for reuse: each command's own, made
// anew, was 4% of the bytes BenchmarkPairs allocated. A channel goes back
// only once its single answer has been received (or it was never queued),
// so a late answer can never reach the next command that takes it.
var doneChans = sync.Pool{New: func() any { return make(chan result, 1) }}

// submit hands a command to the writer and waits for its answer. A caller
// that gives up (ctx done) stops waiting; the command may still commit, which
// is why charges carry an Idempotency-Key.
func (e *Engine) submit(ctx context.Context, c command) result {
	done := doneChans.Get().(chan result)
	r := request{cmd: c, done: done}
	select {
	case e.queue <- r:
	case <-ctx.Done():
		doneChans.Put(done) // never queued: nothing will send on it
		return result{Err: ctx.Err()}
	case <-e.stop:
		doneChans.Put(done)
		return result{Err: credits.Errorf(credits.CodeUnavailable, "the engine is shutting down")}
	}
	select {
	case res := <-r.done:
		doneChans.Put(done) // its one answer taken: empty, and nothing more will come
		return res
	case <-ctx.Done():
		// The writer may still answer into it: it is not reused.
		return result{Err: ctx.Err()}
	case <-e.stopped:
		// The writer stopped with this command still queued: it never ran.
		select {
		case res := <-r.done:
			return res
		default:
			return result{Err: credits.Errorf(credits.CodeUnavailable, "the engine is shutting down")}
		}
	}
}
