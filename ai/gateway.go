package ai

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// Request states. A request runs, then either fails (its hold released; the
// key may run again) or, once the provider answered, is capturing (the result
// is saved, the hold not yet captured) and then succeeded (the answer is
// saved and replayed to retries).
const (
	StatusRunning   = "running"
	StatusFailed    = "failed"
	StatusCapturing = "capturing"
	StatusSucceeded = "succeeded"
)

// RequestRecord is what is kept of an AI request per Idempotency-Key.
type RequestRecord struct {
	WorkspaceID string
	Key         string
	Fingerprint string
	Attempt     int
	Status      string
	ChargeID    string
	Result      []byte // the provider's Result (capturing, succeeded)
	Response    []byte // the answer given (succeeded)
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// RequestStore keeps AI request records. Both stores implement it.
type RequestStore interface {
	// ClaimRequest starts an attempt for (workspace, key): a new record, or
	// the next attempt of a failed one, or of one still running or
	// capturing but not updated since staleBefore (its process died). It
	// returns the record and whether this caller claimed it; when not, the
	// record says why (another body, in progress, or succeeded).
	ClaimRequest(ctx context.Context, workspaceID, key, fingerprint string, now, staleBefore time.Time) (RequestRecord, bool, error)
	// SaveRequest updates the record of the given attempt.
	SaveRequest(ctx context.Context, r RequestRecord) error
}

// Gateway runs AI operations against credits: hold → run → capture, or
// release.
type Gateway struct {
	engine   *ledger.Engine
	provider Provider
	store    RequestStore
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
	kinds    map[string]Task
}

// GatewayConfig wires a Gateway.
type GatewayConfig struct {
	Engine   *ledger.Engine
	Provider Provider
	Store    RequestStore
	// Timeout bounds one operation on the provider (default 60 s).
	Timeout time.Duration
	NowFunc func() time.Time
	Logger  *slog.Logger
}

// builtin maps the catalog's built-in operation ids to what they run.
var builtin = map[string]Task{
	"content_rewrite":    {Kind: KindRewrite},
	"section_generation": {Kind: KindSection},
	"image_1k":           {Kind: KindImage, Width: 1024, Height: 1024},
	"image_2k":           {Kind: KindImage, Width: 2048, Height: 2048},
	"avatar_selection":   {Kind: KindAvatar},
}

// NewGateway makes a gateway.
func NewGateway(cfg GatewayConfig) *Gateway {
	g := &Gateway{engine: cfg.Engine, provider: cfg.Provider, store: cfg.Store, timeout: cfg.Timeout, now: cfg.NowFunc, log: cfg.Logger, kinds: builtin}
	if g.timeout <= 0 {
		g.timeout = 60 * time.Second
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	return g
}

// Provider is the gateway's provider.
func (g *Gateway) Provider() Provider { return g.provider }

// RunParams are one AI request.
type RunParams struct {
	WorkspaceID    string
	IdempotencyKey string
	Operation      string
	Prompt         *string
	Text           *string
	MemberID       *string
}

// Response is the answer to an AI request: the captured charge and the
// whole result.
type Response struct {
	Charge credits.ChargeView `json:"charge"`
	Result Result             `json:"result"`
}

func errFailed() error {
	return credits.Errorf(credits.CodeOperationFailed, "the operation failed on the provider; nothing was charged and no result was kept")
}

// task validates p and returns the task to run.
func (g *Gateway) task(p RunParams) (Task, error) {
	if p.IdempotencyKey == "" {
		return Task{}, credits.Invalid("Idempotency-Key", "the Idempotency-Key header is required")
	}
	if len(p.IdempotencyKey) > credits.MaxIdempotencyKey {
		return Task{}, credits.Invalid("Idempotency-Key", "the Idempotency-Key is longer than %d characters", credits.MaxIdempotencyKey)
	}
	cat := g.engine.Catalog()
	if _, ok := cat.Operation(p.Operation); !ok {
		return Task{}, credits.Invalid("operation", "unknown operation %q", p.Operation)
	}
	t, ok := g.kinds[p.Operation]
	if !ok {
		return Task{}, credits.Invalid("operation", "operation %q has no AI implementation; charge it with POST /v1/workspaces/{id}/charges", p.Operation)
	}
	t.Operation = p.Operation
	if p.Prompt != nil {
		t.Prompt = *p.Prompt
	}
	if p.Text != nil {
		t.Text = *p.Text
	}
	if n := utf8.RuneCountInString(t.Prompt); n > MaxPromptChars {
		return Task{}, credits.Invalid("prompt", "prompt is %d characters; at most %d", n, MaxPromptChars)
	}
	if n := utf8.RuneCountInString(t.Text); n > MaxTextChars {
		return Task{}, credits.Invalid("text", "text is %d characters; at most %d", n, MaxTextChars)
	}
	switch t.Kind {
	case KindRewrite:
		if strings.TrimSpace(t.Text) == "" {
			return Task{}, credits.Invalid("text", "text (the text to rewrite) is required")
		}
	case KindSection, KindImage:
		if strings.TrimSpace(t.Prompt) == "" {
			return Task{}, credits.Invalid("prompt", "prompt is required")
		}
	}
	if p.MemberID != nil && (*p.MemberID == "" || len(*p.MemberID) > credits.MaxMemberID) {
		return Task{}, credits.Invalid("member_id", "member_id must be 1 to %d characters", credits.MaxMemberID)
	}
	return t, nil
}

// Fingerprint is what makes two requests with one key "the same".
func Fingerprint(p RunParams) string { return fingerprint(p) }

func fingerprint(p RunParams) string {
	b, _ := json.Marshal([]any{p.Operation, p.Prompt, p.Text, p.MemberID})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Run holds the operation's cost, runs it, and captures on success. On
// failure, timeout or cancellation the hold is released and the error is
// operation_failed, with nothing of the result. A retry with the same key
// after a success gets the same answer and is charged once; after a failure
// it runs again.
func (g *Gateway) Run(ctx context.Context, p RunParams) (Response, error) {
	t, err := g.task(p)
	if err != nil {
		return Response{}, err
	}
	now := g.now().UTC()
	rec, claimed, err := g.store.ClaimRequest(ctx, p.WorkspaceID, p.IdempotencyKey, fingerprint(p), now, now.Add(-g.timeout-time.Minute))
	if err != nil {
		return Response{}, err
	}
	if !claimed {
		return g.answerUnclaimed(rec, p)
	}
	// Whatever the client does now, finish what was started: a cancelled
	// request still releases its hold.
	bg := context.WithoutCancel(ctx)
	if rec.Status == StatusCapturing {
		// A process died between saving the result and capturing it.
		return g.capture(bg, rec)
	}
	holdSeconds := int64((g.timeout + time.Minute) / time.Second)
	hold, err := g.engine.Hold(ctx, ledger.HoldParams{
		WorkspaceID:    p.WorkspaceID,
		IdempotencyKey: fmt.Sprintf("ai:%s#%d", p.IdempotencyKey, rec.Attempt),
		Operation:      p.Operation,
		MemberID:       p.MemberID,
		HoldSeconds:    min(holdSeconds, credits.MaxHoldSeconds),
		Metadata:       map[string]string{"ai_request": p.IdempotencyKey},
	})
	if err != nil {
		g.fail(bg, rec, "")
		return Response{}, err // 402 and the provider is never called
	}
	rec.ChargeID = hold.Charge.ID

	res, err := g.run(ctx, t)
	if err != nil {
		g.log.Warn("AI operation failed; releasing its hold", "charge_id", rec.ChargeID, "operation", t.Operation, "provider", g.provider.Name(), "err", err)
		if _, rerr := g.engine.Release(bg, rec.ChargeID); rerr != nil {
			// The hold expires by itself: its credits come back then.
			g.log.Error("releasing a failed operation's hold failed", "charge_id", rec.ChargeID, "err", rerr)
		}
		g.fail(bg, rec, rec.ChargeID)
		return Response{}, errFailed()
	}
	rec.Result, err = json.Marshal(res)
	if err != nil {
		return Response{}, err
	}
	rec.Status = StatusCapturing
	rec.UpdatedAt = g.now().UTC()
	if err := g.store.SaveRequest(bg, rec); err != nil {
		g.log.Error("saving an AI result failed; releasing its hold", "charge_id", rec.ChargeID, "err", err)
		g.engine.Release(bg, rec.ChargeID) //nolint:errcheck // it expires anyway
		g.fail(bg, rec, rec.ChargeID)
		return Response{}, err
	}
	return g.capture(bg, rec)
}

// run runs a task on the provider (or the avatar library) with the
// gateway's deadline and checks the result is whole.
func (g *Gateway) run(ctx context.Context, t Task) (Result, error) {
	if t.Kind == KindAvatar {
		return SelectAvatar(t.Prompt, t.Text), nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	res, err := g.provider.Run(ctx, t)
	if err != nil {
		return Result{}, err
	}
	switch t.Kind {
	case KindRewrite, KindSection:
		if strings.TrimSpace(res.Text) == "" || utf8.RuneCountInString(res.Text) > MaxResultChars || res.Image != nil {
			return Result{}, &Error{Provider: g.provider.Name(), Op: t.Operation, Reason: "the answer is not one whole text"}
		}
	case KindImage:
		if res.Image == nil || res.Image.Width != t.Width || res.Image.Height != t.Height || res.Image.DataBase64 == "" || res.Text != "" {
			return Result{}, &Error{Provider: g.provider.Name(), Op: t.Operation, Reason: fmt.Sprintf("the answer is not one %dx%d image", t.Width, t.Height)}
		}
	}
	return res, nil
}

// capture captures the hold of a request whose result is saved, then saves
// and returns the answer. A hold that can no longer be captured (it expired
// while its process was down) fails the request: nothing is charged and the
// next retry runs again.
func (g *Gateway) capture(ctx context.Context, rec RequestRecord) (Response, error) {
	var res Result
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		return Response{}, err
	}
	cr, err := g.engine.Capture(ctx, rec.ChargeID)
	if err != nil {
		if credits.ErrorCode(err) == credits.CodeChargeNotHeld {
			g.log.Warn("an AI result's hold ended before its capture; dropping the result", "charge_id", rec.ChargeID)
			g.fail(ctx, rec, rec.ChargeID)
			return Response{}, errFailed()
		}
		return Response{}, err // the store is down: the record stays capturing, a retry finishes it
	}
	resp := Response{Charge: cr.View(), Result: res}
	if rec.Response, err = json.Marshal(resp); err != nil {
		return Response{}, err
	}
	rec.Status = StatusSucceeded
	rec.UpdatedAt = g.now().UTC()
	if err := g.store.SaveRequest(ctx, rec); err != nil {
		// Charged, and the answer is right: a retry finds the record
		// capturing and captures again, which answers the same.
		g.log.Error("saving an AI answer failed", "charge_id", rec.ChargeID, "err", err)
	}
	return resp, nil
}

func (g *Gateway) fail(ctx context.Context, rec RequestRecord, chargeID string) {
	rec.Status = StatusFailed
	rec.ChargeID = chargeID
	rec.Result = nil
	rec.UpdatedAt = g.now().UTC()
	if err := g.store.SaveRequest(ctx, rec); err != nil {
		g.log.Error("saving a failed AI request failed", "key", rec.Key, "err", err)
	}
}

// answerUnclaimed answers a request whose key is taken.
func (g *Gateway) answerUnclaimed(rec RequestRecord, p RunParams) (Response, error) {
	switch {
	case rec.Fingerprint != fingerprint(p):
		return Response{}, &credits.Error{Code: credits.CodeIdempotencyKeyReused, Field: "Idempotency-Key", Message: "this Idempotency-Key was used with a different request"}
	case rec.Status == StatusSucceeded:
		var resp Response
		if err := json.Unmarshal(rec.Response, &resp); err != nil {
			return Response{}, err
		}
		return resp, nil
	default:
		return Response{}, credits.Errorf(credits.CodeRequestInProgress, "a request with this Idempotency-Key is still running; retry shortly")
	}
}
