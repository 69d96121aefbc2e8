package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/ledger"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.Store().Ping(r.Context()); err != nil {
		return credits.Errorf(credits.CodeUnavailable, "the store does not answer")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) catalog(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.engine.Catalog())
	return nil
}

// EstimateRequest is the body of POST /v1/estimate.
type EstimateRequest struct {
	Items []credits.EstimateItem `json:"items"`
}

func (s *Server) estimate(w http.ResponseWriter, r *http.Request) error {
	var req EstimateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	est, err := s.engine.Estimate(req.Items)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, est)
	return nil
}

// APIKeyRequest is the body of POST /v1/api-keys.
type APIKeyRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// APIKeyCreated is an API key with its secret, shown once.
type APIKeyCreated struct {
	auth.APIKey
	Secret string `json:"secret"`
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req APIKeyRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	k, secret, err := s.auth.CreateAPIKey(r.Context(), req.Name, req.Scope)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, APIKeyCreated{APIKey: k, Secret: secret})
	return nil
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.auth.APIKeys(r.Context())
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []auth.APIKey{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": keys})
	return nil
}

// WorkspaceRequest is the body of POST /v1/workspaces.
type WorkspaceRequest struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Plan        string  `json:"plan"`
	CycleAnchor *string `json:"cycle_anchor"`
}

func (s *Server) createWorkspace(w http.ResponseWriter, r *http.Request) error {
	var req WorkspaceRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	p := ledger.CreateWorkspaceParams{ID: req.ID, Name: req.Name, Plan: req.Plan}
	if req.CycleAnchor != nil {
		t, err := time.Parse(time.RFC3339Nano, *req.CycleAnchor)
		if err != nil {
			return credits.Invalid("cycle_anchor", "cycle_anchor must be an RFC 3339 time, like 2025-01-31T09:00:00Z")
		}
		p.CycleAnchor = &t
	}
	ws, _, err := s.engine.CreateWorkspace(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ws)
	return nil
}

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.engine.Workspace(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ws)
	return nil
}

func (s *Server) balance(w http.ResponseWriter, r *http.Request) error {
	b, err := s.engine.Balance(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// SessionTokenRequest is the body of POST /v1/workspaces/{id}/session-tokens.
type SessionTokenRequest struct {
	MemberID   string `json:"member_id"`
	TTLSeconds *int64 `json:"ttl_seconds"`
}

// SessionToken is a minted session token.
type SessionToken struct {
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
	WorkspaceID string    `json:"workspace_id"`
	MemberID    string    `json:"member_id"`
}

func (s *Server) createSessionToken(w http.ResponseWriter, r *http.Request) error {
	var req SessionTokenRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	ttl := auth.DefaultSessionTTL
	if req.TTLSeconds != nil {
		if *req.TTLSeconds < 1 || *req.TTLSeconds > int64(auth.MaxSessionTTL/time.Second) {
			return credits.Invalid("ttl_seconds", "ttl_seconds must be an integer from 1 to %d", int64(auth.MaxSessionTTL/time.Second))
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	id := r.PathValue("id")
	if _, err := s.engine.Workspace(r.Context(), id); err != nil {
		return err
	}
	tok, exp, err := s.auth.IssueSession(id, req.MemberID, ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, SessionToken{Token: tok, ExpiresAt: exp, WorkspaceID: id, MemberID: req.MemberID})
	return nil
}

// ChargeRequest is the body of POST /v1/workspaces/{id}/charges.
type ChargeRequest struct {
	Operation   string            `json:"operation"`
	Quantity    *int64            `json:"quantity"`
	MemberID    *string           `json:"member_id"`
	Capture     bool              `json:"capture"`
	HoldSeconds *int64            `json:"hold_seconds"`
	Metadata    map[string]string `json:"metadata"`
}

// HoldParams turns the request into the engine's parameters. Absent
// quantity and hold_seconds take their defaults; present ones are checked
// as given.
func (c *ChargeRequest) HoldParams(workspaceID, key string) (ledger.HoldParams, error) {
	p := ledger.HoldParams{WorkspaceID: workspaceID, IdempotencyKey: key, Operation: c.Operation,
		MemberID: c.MemberID, Capture: c.Capture, Metadata: c.Metadata}
	if c.Quantity != nil {
		if *c.Quantity < 1 {
			return p, credits.Invalid("quantity", "quantity must be an integer from 1 to %d", credits.MaxQuantity)
		}
		p.Quantity = *c.Quantity
	}
	if c.HoldSeconds != nil {
		if *c.HoldSeconds < 1 {
			return p, credits.Invalid("hold_seconds", "hold_seconds must be an integer from 1 to %d", credits.MaxHoldSeconds)
		}
		p.HoldSeconds = *c.HoldSeconds
	}
	return p, nil
}

// ChargeView is a charge as the API shows it, with the workspace's balance.
type ChargeView = credits.ChargeView

func chargeView(r ledger.ChargeResult) ChargeView { return r.View() }

func (s *Server) createCharge(w http.ResponseWriter, r *http.Request) error {
	var req ChargeRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	p, err := req.HoldParams(r.PathValue("id"), r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if err := s.sessionMember(r, &p.MemberID); err != nil {
		return err
	}
	res, err := s.engine.Hold(r.Context(), p)
	if err != nil {
		return err
	}
	v := chargeView(res)
	writeCharge(w, http.StatusCreated, &v)
	return nil
}

// sessionMember makes a session token's charges name its member: a member id
// in the body must be the token's.
func (s *Server) sessionMember(r *http.Request, member **string) error {
	p, _ := PrincipalFrom(r.Context())
	if p.Kind != auth.KindSession {
		return nil
	}
	if *member != nil && **member != p.MemberID {
		return forbidden("a session token charges as its own member")
	}
	m := p.MemberID
	*member = &m
	return nil
}

func (s *Server) chargeOf(r *http.Request) (credits.Charge, error) {
	c, err := s.engine.Charge(r.Context(), r.PathValue("id"))
	if err != nil {
		return c, err
	}
	return c, checkWorkspace(r, c.WorkspaceID)
}

func (s *Server) getCharge(w http.ResponseWriter, r *http.Request) error {
	c, err := s.chargeOf(r)
	if err != nil {
		return err
	}
	b, err := s.engine.Balance(r.Context(), c.WorkspaceID)
	if err != nil {
		return err
	}
	v := chargeView(ledger.ChargeResult{Charge: &c, Balance: &b})
	writeCharge(w, http.StatusOK, &v)
	return nil
}

func (s *Server) capture(w http.ResponseWriter, r *http.Request) error {
	return s.finish(w, r, s.engine.Capture)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) error {
	return s.finish(w, r, s.engine.Release)
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, fn func(context.Context, string) (ledger.ChargeResult, error)) error {
	if err := emptyBody(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	// Only a session token is bound to a workspace: check the charge's
	// before touching it. Keys may finish any charge, so they skip the read.
	if p, _ := PrincipalFrom(r.Context()); p.Kind == auth.KindSession {
		c, err := s.chargeOf(r)
		if err != nil {
			return err
		}
		id = c.ID
	}
	res, err := fn(r.Context(), id)
	if err != nil {
		return err
	}
	v := chargeView(res)
	writeCharge(w, http.StatusOK, &v)
	return nil
}

// emptyBody accepts no body, or an empty JSON object, on action endpoints.
func emptyBody(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	var none struct{}
	err := decodeBody(r, &none)
	if e := credits.AsError(err); e != nil && e.Field == "body" && e.Code == credits.CodeInvalidRequest && r.ContentLength < 0 {
		return nil // a chunked empty body
	}
	return err
}

// PlanRequest is the body of PUT /v1/workspaces/{id}/plan.
type PlanRequest struct {
	Plan string `json:"plan"`
}

// WorkspaceView is a workspace with its balance, answered to plan changes.
type WorkspaceView struct {
	credits.Workspace
	Balance credits.Balance `json:"balance"`
}

func (s *Server) changePlan(w http.ResponseWriter, r *http.Request) error {
	var req PlanRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	ws, b, err := s.engine.ChangePlan(r.Context(), r.PathValue("id"), req.Plan)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, WorkspaceView{Workspace: ws, Balance: b})
	return nil
}

// AdjustRequest is the body of POST /v1/workspaces/{id}/adjustments.
type AdjustRequest struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

func (s *Server) adjust(w http.ResponseWriter, r *http.Request) error {
	var req AdjustRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	b, err := s.engine.Adjust(r.Context(), r.PathValue("id"), req.Amount, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, b)
	return nil
}

func (s *Server) ledger(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > credits.MaxLedgerPage {
			return credits.Invalid("limit", "limit must be an integer from 1 to %d", credits.MaxLedgerPage)
		}
		limit = n
	}
	page, err := s.engine.Ledger(r.Context(), r.PathValue("id"), limit, q.Get("cursor"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
