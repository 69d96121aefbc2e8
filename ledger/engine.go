// Package ledger is the credits engine: hold, capture, release, expiry, cycle
// resets, plan changes and estimates. It owns the rules and the invariants
// (see package credits), talks to storage through the Store interface and
// takes its time from an injected clock.
//
// Every write is a command applied by one writer goroutine in batches (group
// commit, see writer.go); reads go to the store and never wait on the writer,
// except when a cycle reset or a hold expiry fell due on what they read: then
// they ask the writer to apply it first, so a read never shows a stale cycle.
package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/credits-dev/credits"
)

// Options tune an Engine. Zero values take the defaults.
type Options struct {
	// NowFunc is the clock (default time.Now). Tests inject one.
	NowFunc func() time.Time
	// MaxBatch bounds the commands committed in one transaction (default 512).
	MaxBatch int
	// QueueSize bounds the commands waiting for the writer (default 4096).
	QueueSize int
	// BatchTimeout bounds one batch's transaction (default 10 s).
	BatchTimeout time.Duration
	// SweepInterval is how often held charges past expiry are expired
	// (default 1 s; negative disables the sweeper).
	SweepInterval time.Duration
	// Writers is how many batches may be in flight at once on a store with
	// many writers (PostgreSQL; default 1). They take turns per workspace
	// through the store's locks. A single-writer store always has one.
	Writers int
	// CacheAccounts and CacheHolds bound the writer's memory of committed
	// accounts and held charges on a single-writer store (defaults 25,000
	// and 100,000: an account costs about 330 bytes, and resident memory
	// with a million workspaces stays under 200 MB).
	CacheAccounts int
	CacheHolds    int
	Logger        *slog.Logger
}

// Engine applies commands to a Store. It is safe for concurrent use.
type Engine struct {
	store  Store
	cat    credits.Catalog
	opts   Options
	log    *slog.Logger
	broker *broker

	queue   chan request
	stop    chan struct{}
	stopped chan struct{}
	sweeper chan struct{}
	once    sync.Once

	batches, commands atomic.Int64
	busy              []busyClock // one per writer
	writers           int
	// cache is what this process committed, when it is the store's only
	// writer; nil otherwise.
	cache *cache

	// listening: the store announces changes (many writers); balances are
	// published from those announcements only.
	listening  bool
	stopListen context.CancelFunc
}

// republish reads a workspace's committed balance and hands it to its
// streams, if it has any.
func (e *Engine) republish(workspaceID string) {
	if e.Subscribers(workspaceID) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.BatchTimeout)
	defer cancel()
	a, err := e.store.Account(ctx, workspaceID)
	if err != nil {
		e.log.Warn("reading a changed balance failed", "workspace", workspaceID, "err", err)
		return
	}
	e.broker.publish(e.balanceOf(a))
}

// New starts an engine on store with a validated catalog.
func New(store Store, cat credits.Catalog, opts Options) (*Engine, error) {
	if err := cat.Validate(); err != nil {
		return nil, err
	}
	if opts.NowFunc == nil {
		opts.NowFunc = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = 10 * time.Second
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheAccounts <= 0 {
		opts.CacheAccounts = 25_000
	}
	if opts.CacheHolds <= 0 {
		opts.CacheHolds = 100_000
	}
	e := &Engine{
		store: store, cat: cat, opts: opts, log: opts.Logger,
		broker:  newBroker(),
		queue:   make(chan request, opts.QueueSize),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		sweeper: make(chan struct{}),
	}
	if sw, ok := store.(SingleWriter); ok && sw.SingleWriter() {
		e.cache = newCache(opts.CacheAccounts, opts.CacheHolds)
	}
	writers := opts.Writers
	if e.cache != nil || writers <= 0 {
		writers = 1 // one writer owns a single-writer store
	}
	e.writers = writers
	e.busy = make([]busyClock, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.run(&e.busy[i])
		}()
	}
	go func() {
		wg.Wait()
		close(e.stopped)
	}()
	if l, ok := store.(Listener); ok {
		e.listening = true
		ctx, cancel := context.WithCancel(context.Background())
		e.stopListen = cancel
		go func() {
			_ = l.Listen(ctx, e.republish)
		}()
	}
	if opts.SweepInterval > 0 {
		go e.sweepLoop()
	} else {
		close(e.sweeper)
	}
	return e, nil
}

// Close stops the sweeper and the writer. Callers still waiting get
// unavailable. It does not close the store.
func (e *Engine) Close() error {
	e.once.Do(func() {
		if e.stopListen != nil {
			e.stopListen()
		}
		close(e.stop)
		<-e.stopped
		<-e.sweeper
	})
	return nil
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() credits.Catalog { return e.cat }

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

func (e *Engine) now() time.Time { return e.opts.NowFunc().UTC().Truncate(time.Microsecond) }

// Estimate prices a list of work against the catalog.
func (e *Engine) Estimate(items []credits.EstimateItem) (credits.Estimate, error) {
	return e.cat.Estimate(items)
}

// CreateWorkspaceParams are the inputs of CreateWorkspace; empty means
// default.
type CreateWorkspaceParams struct {
	ID          string
	Name        string
	Plan        string
	CycleAnchor *time.Time
}

var workspaceIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CreateWorkspace makes a workspace and grants its plan's credits for the
// cycle that contains now.
func (e *Engine) CreateWorkspace(ctx context.Context, p CreateWorkspaceParams) (credits.Workspace, credits.Balance, error) {
	ws := credits.Workspace{ID: p.ID, Name: p.Name, Plan: p.Plan}
	if ws.ID == "" {
		ws.ID = newID("ws_")
	} else if !workspaceIDPattern.MatchString(ws.ID) {
		return ws, credits.Balance{}, credits.Invalid("id", "id must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")
	}
	if strings.TrimSpace(ws.Name) == "" {
		return ws, credits.Balance{}, credits.Invalid("name", "name is required")
	}
	if utf8.RuneCountInString(ws.Name) > credits.MaxWorkspaceName {
		return ws, credits.Balance{}, credits.Invalid("name", "name is longer than %d characters", credits.MaxWorkspaceName)
	}
	if ws.Plan == "" {
		ws.Plan = e.cat.Plans[0].ID
	} else if _, ok := e.cat.Plan(ws.Plan); !ok {
		return ws, credits.Balance{}, credits.Invalid("plan", "unknown plan %q", ws.Plan)
	}
	if p.CycleAnchor != nil {
		ws.CycleAnchor = p.CycleAnchor.UTC().Truncate(time.Microsecond)
	} else {
		ws.CycleAnchor = e.now()
	}
	r := e.submit(ctx, &createWorkspaceCmd{ws: ws})
	if r.Err != nil {
		return credits.Workspace{}, credits.Balance{}, r.Err
	}
	return *r.Workspace, *r.Balance, nil
}

// Workspace returns a workspace as last committed, with a due reset applied.
func (e *Engine) Workspace(ctx context.Context, id string) (credits.Workspace, error) {
	a, err := e.account(ctx, id)
	return a.Workspace, err
}

// Balance returns a workspace's current balance.
func (e *Engine) Balance(ctx context.Context, id string) (credits.Balance, error) {
	a, err := e.account(ctx, id)
	if err != nil {
		return credits.Balance{}, err
	}
	return e.balanceOf(a), nil
}

func (e *Engine) balanceOf(a Account) credits.Balance {
	s := state{cat: &e.cat}
	return s.balance(&a)
}

// account reads an account and, when a reset or an expiry fell due on it,
// has the writer apply that first.
func (e *Engine) account(ctx context.Context, id string) (Account, error) {
	a, err := e.store.Account(ctx, id)
	if err != nil {
		return Account{}, err
	}
	now := e.now()
	if a.Cycle.End.After(now) && (a.NextExpiry.IsZero() || a.NextExpiry.After(now)) {
		return a, nil
	}
	r := e.submit(ctx, &touchCmd{workspaceID: id})
	if r.Err != nil {
		return Account{}, r.Err
	}
	return e.store.Account(ctx, id)
}

// HoldParams are the inputs of Hold.
type HoldParams struct {
	WorkspaceID    string
	IdempotencyKey string
	Operation      string
	Quantity       int64 // 0 means 1
	MemberID       *string
	Capture        bool
	HoldSeconds    int64 // 0 means the default
	Metadata       map[string]string
}

// validate checks and defaults p, and returns the cost and the request's
// fingerprint (what makes two requests with one key "the same").
func (e *Engine) validateHold(p *HoldParams) (int64, string, error) {
	if p.IdempotencyKey == "" {
		return 0, "", credits.Invalid("Idempotency-Key", "the Idempotency-Key header is required")
	}
	if len(p.IdempotencyKey) > credits.MaxIdempotencyKey {
		return 0, "", credits.Invalid("Idempotency-Key", "the Idempotency-Key is longer than %d characters", credits.MaxIdempotencyKey)
	}
	op, ok := e.cat.Operation(p.Operation)
	if p.Operation == "" {
		return 0, "", credits.Invalid("operation", "operation is required")
	}
	if !ok {
		return 0, "", credits.Invalid("operation", "unknown operation %q", p.Operation)
	}
	if p.Quantity == 0 {
		p.Quantity = 1
	}
	if p.Quantity < 1 || p.Quantity > credits.MaxQuantity {
		return 0, "", credits.Invalid("quantity", "quantity must be an integer from 1 to %d", credits.MaxQuantity)
	}
	if p.HoldSeconds == 0 {
		p.HoldSeconds = credits.DefaultHoldSeconds
	}
	if p.HoldSeconds < 1 || p.HoldSeconds > credits.MaxHoldSeconds {
		return 0, "", credits.Invalid("hold_seconds", "hold_seconds must be an integer from 1 to %d", credits.MaxHoldSeconds)
	}
	if p.MemberID != nil && (*p.MemberID == "" || len(*p.MemberID) > credits.MaxMemberID) {
		return 0, "", credits.Invalid("member_id", "member_id must be 1 to %d characters", credits.MaxMemberID)
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return 0, "", err
	}
	fp, _ := json.Marshal(struct {
		Op       string            `json:"o"`
		Qty      int64             `json:"q"`
		Member   *string           `json:"m"`
		Capture  bool              `json:"c"`
		Hold     int64             `json:"h"`
		Metadata map[string]string `json:"md"`
	}{p.Operation, p.Quantity, p.MemberID, p.Capture, p.HoldSeconds, p.Metadata})
	sum := sha256.Sum256(fp)
	return op.Cost * p.Quantity, hex.EncodeToString(sum[:]), nil
}

func validateMetadata(md map[string]string) error {
	if len(md) > credits.MaxMetadataKeys {
		return credits.Invalid("metadata", "at most %d keys", credits.MaxMetadataKeys)
	}
	for k, v := range md {
		if k == "" || len(k) > credits.MaxMetadataKey {
			return credits.Invalid("metadata", "keys must be 1 to %d characters", credits.MaxMetadataKey)
		}
		if len(v) > credits.MaxMetadataValue {
			return credits.Invalid("metadata."+k, "values must be at most %d characters", credits.MaxMetadataValue)
		}
	}
	return nil
}

// Hold reserves the cost of an operation, or charges it at once with
// Capture. A retry with the same key and parameters returns the first
// answer; with other parameters it fails with idempotency_key_reused.
func (e *Engine) Hold(ctx context.Context, p HoldParams) (ChargeResult, error) {
	cost, fp, err := e.validateHold(&p)
	if err != nil {
		return ChargeResult{}, err
	}
	r := e.submit(ctx, &holdCmd{p: p, cost: cost, fingerprint: fp})
	if r.Err != nil {
		return ChargeResult{}, r.Err
	}
	return r.Charge, nil
}

// Capture turns a held charge's credits into use. Capturing again returns the
// same answer.
func (e *Engine) Capture(ctx context.Context, chargeID string) (ChargeResult, error) {
	return e.finish(ctx, chargeID, credits.StatusCaptured)
}

// Release gives a held charge's credits back. Releasing again returns the same
// answer.
func (e *Engine) Release(ctx context.Context, chargeID string) (ChargeResult, error) {
	return e.finish(ctx, chargeID, credits.StatusReleased)
}

func (e *Engine) finish(ctx context.Context, chargeID, status string) (ChargeResult, error) {
	r := e.submit(ctx, &finishCmd{chargeID: chargeID, status: status})
	if r.Err != nil {
		return ChargeResult{}, r.Err
	}
	return r.Charge, nil
}

// Charge returns a charge; a hold past its expiry is expired first.
func (e *Engine) Charge(ctx context.Context, id string) (credits.Charge, error) {
	c, err := e.store.Charge(ctx, id)
	if err != nil {
		return c, err
	}
	if c.Status == credits.StatusHeld && !c.ExpiresAt.After(e.now()) {
		if r := e.submit(ctx, &touchCmd{workspaceID: c.WorkspaceID}); r.Err != nil {
			return credits.Charge{}, r.Err
		}
		return e.store.Charge(ctx, id)
	}
	return c, nil
}

// ChangePlan upgrades at once (the difference in monthly credits is granted
// now) or records a downgrade for the next cycle start.
func (e *Engine) ChangePlan(ctx context.Context, workspaceID, plan string) (credits.Workspace, credits.Balance, error) {
	if plan == "" {
		return credits.Workspace{}, credits.Balance{}, credits.Invalid("plan", "plan is required")
	}
	if _, ok := e.cat.Plan(plan); !ok {
		return credits.Workspace{}, credits.Balance{}, credits.Invalid("plan", "unknown plan %q", plan)
	}
	r := e.submit(ctx, &changePlanCmd{workspaceID: workspaceID, plan: plan})
	if r.Err != nil {
		return credits.Workspace{}, credits.Balance{}, r.Err
	}
	return *r.Workspace, *r.Balance, nil
}

// Adjust adds (or with a negative amount removes) credits in the current
// cycle, with a reason in the ledger. Only admins may.
func (e *Engine) Adjust(ctx context.Context, workspaceID string, amount int64, reason string) (credits.Balance, error) {
	if amount == 0 || amount > credits.MaxCost || amount < -credits.MaxCost {
		return credits.Balance{}, credits.Invalid("amount", "amount must be a non-zero integer from -%d to %d", credits.MaxCost, credits.MaxCost)
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 500 {
		return credits.Balance{}, credits.Invalid("reason", "a reason of 1 to 500 characters is required")
	}
	r := e.submit(ctx, &adjustCmd{workspaceID: workspaceID, amount: amount, reason: reason})
	if r.Err != nil {
		return credits.Balance{}, r.Err
	}
	return *r.Balance, nil
}

// LedgerPage is one page of a workspace's ledger, newest first.
type LedgerPage struct {
	Entries    []credits.Entry `json:"entries"`
	NextCursor *string         `json:"next_cursor"`
}

// Ledger returns up to limit entries older than cursor ("" for the newest).
func (e *Engine) Ledger(ctx context.Context, workspaceID string, limit int, cursor string) (LedgerPage, error) {
	if limit == 0 {
		limit = credits.DefaultLedgerPage
	}
	if limit < 1 || limit > credits.MaxLedgerPage {
		return LedgerPage{}, credits.Invalid("limit", "limit must be an integer from 1 to %d", credits.MaxLedgerPage)
	}
	var before int64
	if cursor != "" {
		b, err := decodeCursor(cursor)
		if err != nil {
			return LedgerPage{}, credits.Invalid("cursor", "cursor is not one this server gave")
		}
		before = b
	}
	if _, err := e.account(ctx, workspaceID); err != nil {
		return LedgerPage{}, err
	}
	entries, err := e.store.Entries(ctx, workspaceID, before, limit+1)
	if err != nil {
		return LedgerPage{}, err
	}
	page := LedgerPage{Entries: entries}
	if len(entries) > limit {
		page.Entries = entries[:limit]
		c := encodeCursor(entries[limit-1].Seq)
		page.NextCursor = &c
	}
	if page.Entries == nil {
		page.Entries = []credits.Entry{}
	}
	return page, nil
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("le:" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(string(b), "le:")
	if !ok {
		return 0, fmt.Errorf("bad cursor")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad cursor")
	}
	return n, nil
}

// Subscribe returns a channel of a workspace's balance after every committed
// change. The channel keeps only the newest balance when the reader is slow.
// Call cancel when done.
func (e *Engine) Subscribe(workspaceID string) (<-chan credits.Balance, func()) {
	return e.broker.subscribe(workspaceID)
}

// Sweep expires every held charge past its expiry, up to limit workspaces.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	ids, err := e.store.DueWorkspaces(ctx, e.now(), 1000)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if r := e.submit(ctx, &touchCmd{workspaceID: id}); r.Err != nil {
			return 0, r.Err
		}
	}
	return len(ids), nil
}

func (e *Engine) sweepLoop() {
	defer close(e.sweeper)
	t := time.NewTicker(e.opts.SweepInterval)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.BatchTimeout)
		if _, err := e.Sweep(ctx); err != nil {
			e.log.Warn("sweep failed", "err", err)
		}
		if now := e.now(); now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			if _, err := e.store.DeleteIdempotency(ctx, now.Add(-credits.IdempotencyTTL)); err != nil {
				e.log.Warn("pruning idempotency keys failed", "err", err)
			}
		}
		cancel()
	}
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID makes an id with a prefix: 8 bytes of the current time in
// microseconds, then 8 random bytes, 26 characters in all. Ids sort by
// creation time (the alphabet is in ASCII order), so new rows go to the end
// of the store's index instead of anywhere in it.
func newID(prefix string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMicro()))
	_, _ = rand.Read(b[8:]) // never fails (crypto/rand)
	return prefix + idEncoding.EncodeToString(b[:])
}

// Stats counts the writers' work since the engine started.
type Stats struct {
	Batches  int64 // transactions committed (or failed)
	Commands int64 // commands applied
	// Busy is the wall time the writers spent on batches (loading,
	// applying, committing: up to their answers), summed over Writers,
	// the batches under way counted up to the moment of reading: so the
	// Busy of two readings differs by the time spent between them, never
	// more. Over an interval, Busy/(Writers*interval) near 1 means the
	// writers are the limit: callers wait for them, not the other way
	// around.
	Busy    time.Duration
	Writers int
}

// Stats returns the writers' counters: Commands/Batches is the mean batch.
func (e *Engine) Stats() Stats {
	st := Stats{Batches: e.batches.Load(), Commands: e.commands.Load(), Writers: e.writers}
	for i := range e.busy {
		st.Busy += e.busy[i].read()
	}
	return st
}

// busyClock is one writer's time in batches. A mutex, not an atomic sum:
// a reading must see a batch either under way or done, never both, or
// half of it (a batch can take longer than a short interval measured).
// It is taken twice a batch, by its one writer and a rare reader.
type busyClock struct {
	mu    sync.Mutex
	done  time.Duration // the batches finished
	since time.Time     // the start of the batch under way; zero between
}

func (c *busyClock) begin() {
	c.mu.Lock()
	c.since = time.Now()
	c.mu.Unlock()
}

func (c *busyClock) end() {
	c.mu.Lock()
	c.done += time.Since(c.since)
	c.since = time.Time{}
	c.mu.Unlock()
}

func (c *busyClock) read() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.IsZero() {
		return c.done
	}
	return c.done + time.Since(c.since)
}
