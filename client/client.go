// Package client is the Go client of the credits HTTP API.
//
//	c := client.New("http://127.0.0.1:8080", os.Getenv("CREDITS_KEY"))
//	ch, err := c.Hold(ctx, "acme", client.ChargeParams{Operation: "image_1k"})
//	var insufficient *client.InsufficientCreditsError
//	if errors.As(err, &insufficient) { /* show insufficient.Upgrade */ }
//	... run the operation ...
//	_, err = c.Capture(ctx, ch.ID) // or c.Release on failure
//
// Charges carry an Idempotency-Key (generated when not given), and the
// client retries a charge whose answer was lost with the same key, so a
// retry never charges twice.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credits-dev/credits"
)

// Client calls one credits server with one secret. It is safe for
// concurrent use.
type Client struct {
	base   string
	secret string
	// authorization is the Authorization header's value, built once.
	authorization []string
	http          *http.Client
	maxRetries    int
	backoff       time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 30 s timeout;
// balance streams use it without the timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a request that got no answer or a 503 is
// sent again (default 2), waiting backoff, then twice that, between tries.
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *Client) { c.maxRetries, c.backoff = n, backoff }
}

// New makes a client for the server at baseURL, authenticating with secret
// (an API key, the admin key or a session token).
func New(baseURL, secret string, opts ...Option) *Client {
	c := &Client{
		base:       strings.TrimRight(baseURL, "/"),
		secret:     secret,
		http:       &http.Client{Timeout: 30 * time.Second},
		maxRetries: 2,
		backoff:    100 * time.Millisecond,
	}
	for _, o := range opts {
		o(c)
	}
	c.authorization = []string{"Bearer " + secret}
	return c
}

// Error is a problem the server answered with.
type Error struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Title     string `json:"title"`
	Detail    string `json:"detail"`
	Field     string `json:"field"`
	RequestID string `json:"-"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("credits: %d %s: %s", e.Status, e.Code, e.Detail)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// InsufficientCreditsError is a 402: the operation needs more credits than
// are available; nothing was held.
type InsufficientCreditsError struct {
	Problem *Error
	credits.Insufficient
}

func (e *InsufficientCreditsError) Error() string { return e.Problem.Error() }

// Unwrap lets errors.As find the *Error inside.
func (e *InsufficientCreditsError) Unwrap() error { return e.Problem }

// ChargeParams are the body of a charge.
type ChargeParams struct {
	Operation   string            `json:"operation"`
	Quantity    int64             `json:"quantity,omitempty"`
	MemberID    string            `json:"member_id,omitempty"`
	Capture     bool              `json:"capture,omitempty"`
	HoldSeconds int64             `json:"hold_seconds,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// IdempotencyKey makes retries safe; empty: the client makes one.
	IdempotencyKey string `json:"-"`
}

// Charge is a charge with the workspace's balance after it.
type Charge struct {
	credits.Charge
	Balance *credits.Balance `json:"balance,omitempty"`
}

// WorkspaceParams are the body of POST /v1/workspaces.
type WorkspaceParams struct {
	ID          string     `json:"id,omitempty"`
	Name        string     `json:"name"`
	Plan        string     `json:"plan,omitempty"`
	CycleAnchor *time.Time `json:"cycle_anchor,omitempty"`
}

// PlanChange is a workspace after a plan change, with its balance.
type PlanChange struct {
	credits.Workspace
	Balance credits.Balance `json:"balance"`
}

// LedgerPage is one page of a ledger, newest first.
type LedgerPage struct {
	Entries    []credits.Entry `json:"entries"`
	NextCursor *string         `json:"next_cursor"`
}

// SessionToken is a workspace session token for a browser.
type SessionToken struct {
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
	WorkspaceID string    `json:"workspace_id"`
	MemberID    string    `json:"member_id"`
}

// APIKey is a new API key; Secret is shown only this once.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	Secret    string    `json:"secret"`
}

// Catalog returns the operations and plans.
func (c *Client) Catalog(ctx context.Context) (credits.Catalog, error) {
	var out credits.Catalog
	return out, c.do(ctx, "GET", "/v1/catalog", nil, "", &out)
}

// Estimate prices work and finds the smallest plan that fits.
func (c *Client) Estimate(ctx context.Context, items []credits.EstimateItem) (credits.Estimate, error) {
	var out credits.Estimate
	return out, c.do(ctx, "POST", "/v1/estimate", map[string]any{"items": items}, "", &out)
}

// CreateWorkspace makes a workspace (admin).
func (c *Client) CreateWorkspace(ctx context.Context, p WorkspaceParams) (credits.Workspace, error) {
	var out credits.Workspace
	return out, c.do(ctx, "POST", "/v1/workspaces", p, "", &out)
}

// Workspace reads a workspace.
func (c *Client) Workspace(ctx context.Context, id string) (credits.Workspace, error) {
	var out credits.Workspace
	return out, c.do(ctx, "GET", "/v1/workspaces/"+url.PathEscape(id), nil, "", &out)
}

// Balance reads a workspace's balance.
func (c *Client) Balance(ctx context.Context, workspaceID string) (credits.Balance, error) {
	var out credits.Balance
	return out, c.do(ctx, "GET", "/v1/workspaces/"+url.PathEscape(workspaceID)+"/balance", nil, "", &out)
}

// Hold holds (or with Capture charges at once) an operation's cost. A 402
// comes back as *InsufficientCreditsError.
func (c *Client) Hold(ctx context.Context, workspaceID string, p ChargeParams) (Charge, error) {
	key := p.IdempotencyKey
	if key == "" {
		key = NewIdempotencyKey()
	}
	var out Charge
	return out, c.do(ctx, "POST", "/v1/workspaces/"+url.PathEscape(workspaceID)+"/charges", p, key, &out)
}

// Capture turns a held charge into use.
func (c *Client) Capture(ctx context.Context, chargeID string) (Charge, error) {
	var out Charge
	return out, c.do(ctx, "POST", "/v1/charges/"+url.PathEscape(chargeID)+"/capture", nil, "", &out)
}

// Release gives a held charge's credits back.
func (c *Client) Release(ctx context.Context, chargeID string) (Charge, error) {
	var out Charge
	return out, c.do(ctx, "POST", "/v1/charges/"+url.PathEscape(chargeID)+"/release", nil, "", &out)
}

// Charge reads a charge.
func (c *Client) Charge(ctx context.Context, chargeID string) (Charge, error) {
	var out Charge
	return out, c.do(ctx, "GET", "/v1/charges/"+url.PathEscape(chargeID), nil, "", &out)
}

// ChangePlan upgrades at once or schedules a downgrade (admin).
func (c *Client) ChangePlan(ctx context.Context, workspaceID, plan string) (PlanChange, error) {
	var out PlanChange
	return out, c.do(ctx, "PUT", "/v1/workspaces/"+url.PathEscape(workspaceID)+"/plan", map[string]string{"plan": plan}, "", &out)
}

// Ledger reads one page of a workspace's ledger; cursor "" is the newest.
func (c *Client) Ledger(ctx context.Context, workspaceID string, limit int, cursor string) (LedgerPage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/v1/workspaces/" + url.PathEscape(workspaceID) + "/ledger"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out LedgerPage
	return out, c.do(ctx, "GET", path, nil, "", &out)
}

// CreateSessionToken mints a token for one member of one workspace, for a
// browser to hold (admin or service key).
func (c *Client) CreateSessionToken(ctx context.Context, workspaceID, memberID string, ttl time.Duration) (SessionToken, error) {
	body := map[string]any{"member_id": memberID}
	if ttl > 0 {
		body["ttl_seconds"] = int64(ttl / time.Second)
	}
	var out SessionToken
	return out, c.do(ctx, "POST", "/v1/workspaces/"+url.PathEscape(workspaceID)+"/session-tokens", body, "", &out)
}

// CreateAPIKey makes an API key with a scope: admin, service or read.
func (c *Client) CreateAPIKey(ctx context.Context, name, scope string) (APIKey, error) {
	var out APIKey
	return out, c.do(ctx, "POST", "/v1/api-keys", map[string]string{"name": name, "scope": scope}, "", &out)
}

// StreamBalance calls fn with the workspace's balance at once and after
// every change until ctx ends or fn returns an error (which it returns).
func (c *Client) StreamBalance(ctx context.Context, workspaceID string, fn func(credits.Balance) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/workspaces/"+url.PathEscape(workspaceID)+"/balance/stream", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	req.Header.Set("Accept", "text/event-stream")
	hc := *c.http
	hc.Timeout = 0 // a stream lasts
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return readError(res)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:") && event == "balance":
			var b credits.Balance
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, "data:"))), &b); err != nil {
				return fmt.Errorf("credits: balance event: %w", err)
			}
			if err := fn(b); err != nil {
				return err
			}
		case line == "":
			event = ""
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// NewIdempotencyKey makes a random key.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// do sends a request, retrying one that got no answer or a 503 with the
// same body and Idempotency-Key, and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, path string, body any, idemKey string, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	// Without a key a lost POST may have run: only keyed or safe requests
	// are retried.
	retry := method == "GET" || idemKey != "" || strings.HasSuffix(path, "/capture") || strings.HasSuffix(path, "/release")
	wait := c.backoff
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, data, idemKey, out)
		var apiErr *Error
		transient := err != nil && (!errors.As(err, &apiErr) || apiErr.Status == http.StatusServiceUnavailable)
		if !transient || !retry || attempt >= c.maxRetries || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (c *Client) once(ctx context.Context, method, path string, data []byte, idemKey string, out any) error {
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	// Canonical names set directly: Header.Set would canonicalize them
	// again on every request.
	if c.secret != "" {
		req.Header["Authorization"] = c.authorization
	}
	if data != nil {
		req.Header["Content-Type"] = contentTypeJSON
	}
	if idemKey != "" {
		req.Header["Idempotency-Key"] = []string{idemKey}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return readError(res)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, res.Body)
		return err
	}
	// The whole body, then Unmarshal: reading to the end hands the
	// connection back at once, and the buffer is reused.
	buf := bodyBuffers.Get().(*[]byte)
	defer putBodyBuffer(buf)
	body, err := readAll(res.Body, (*buf)[:0], res.ContentLength)
	*buf = body
	if err != nil {
		return err
	}
	return unmarshal(body, out)
}

var contentTypeJSON = []string{"application/json"}

// bodyBuffers hold answers while they are decoded (Unmarshal copies what
// it keeps).
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func putBodyBuffer(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	bodyBuffers.Put(b)
}

// readAll appends all of r to buf; a known length sizes buf at once.
func readAll(r io.Reader, buf []byte, length int64) ([]byte, error) {
	if length > 0 && length < 64<<20 && int64(cap(buf)) < length+1 {
		buf = make([]byte, 0, length+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func readError(res *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	e := Error{Status: res.StatusCode, RequestID: res.Header.Get("Request-Id")}
	if err := json.Unmarshal(data, &e); err != nil || e.Code == "" {
		e.Code = "http_" + strconv.Itoa(res.StatusCode)
		e.Detail = strings.TrimSpace(string(data))
	}
	e.Status = res.StatusCode
	if e.Code == credits.CodeInsufficientCredits {
		ie := &InsufficientCreditsError{Problem: &e}
		_ = json.Unmarshal(data, &ie.Insufficient)
		return ie
	}
	return &e
}
