// Package httpapi serves the v1 HTTP API: REST handlers, auth, problem+json
// errors and the balance stream. It translates HTTP to engine calls and back;
// the rules live in package ledger.
package httpapi

import (
	"context"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	runtimedebug "runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/ledger"
)

// Config wires a Server.
type Config struct {
	Engine *ledger.Engine
	Auth   *auth.Authenticator
	// AI runs AI operations; nil answers them 503.
	AI     *ai.Gateway
	Logger *slog.Logger
	// KeepAlive is how often an idle balance stream gets a comment line
	// (default 15 s; the contract asks for at least every 30 s).
	KeepAlive time.Duration
	// StreamInterval is the least time between two events of one balance
	// stream (default 500 ms; negative: no wait). The first event after a quiet spell goes out at once; only bursts wait.
	StreamInterval time.Duration
	// StreamEvents bounds the events per second a workspace's open streams
	// get together on this instance (default DefaultStreamEvents; negative:
	// no bound): with more streams than StreamEvents × StreamInterval,
	// each waits longer between events (2,000 streams: 1 s by default).
	// Each event is a write to its own connection, so thousands of
	// streams on one busy workspace would otherwise cost CPU in
	// proportion to their number.
	StreamEvents int
	// RateLimit limits requests per credential (zero: no limits); see
	// ratelimit.go.
	RateLimit RateLimit
	// MaxStreamsPerWorkspace caps a workspace's open balance streams
	// (0: DefaultMaxStreamsPerWorkspace; negative: no cap).
	MaxStreamsPerWorkspace int
	// WriteTimeout bounds each write of a response (0: none); see
	// ratelimit_deadline.go.
	WriteTimeout time.Duration
}

// Server is the HTTP API.
type Server struct {
	engine    *ledger.Engine
	auth      *auth.Authenticator
	ai        *ai.Gateway
	log       *slog.Logger
	mux       *http.ServeMux
	keepAlive time.Duration
	// streamInterval: see Config.StreamInterval.
	streamInterval time.Duration
	// streamEvents: see Config.StreamEvents (0: no bound).
	streamEvents int
	draining     atomic.Bool
	// streams ends every balance stream when the server drains.
	streams    context.Context
	endStreams context.CancelFunc
	events     *eventCache
	// Abuse limits (ratelimit*.go).
	limits       *limiter
	streamCap    *streamCap
	writeTimeout time.Duration
}

// Access says who may call a route.
type Access int

// Access levels, each allowing more callers than the one before.
const (
	public    Access = iota
	admin            // the admin key and admin API keys
	issuer           // + service keys: minting session tokens
	keyReader        // + read keys (GET); not session tokens
	reader           // + sessions of the workspace (GET)
	operator         // + service keys and sessions of the workspace: charges
)

// New builds the API's handler.
func New(cfg Config) *Server {
	s := &Server{engine: cfg.Engine, auth: cfg.Auth, ai: cfg.AI, log: cfg.Logger, mux: http.NewServeMux(), keepAlive: cfg.KeepAlive,
		limits: newLimiter(cfg.RateLimit), streamCap: newStreamCap(cfg.MaxStreamsPerWorkspace), writeTimeout: cfg.WriteTimeout}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.keepAlive <= 0 {
		s.keepAlive = 15 * time.Second
	}
	switch s.streamInterval = cfg.StreamInterval; {
	case s.streamInterval == 0:
		s.streamInterval = 500 * time.Millisecond
	case s.streamInterval < 0:
		s.streamInterval = 0
	}
	switch s.streamEvents = cfg.StreamEvents; {
	case s.streamEvents == 0:
		s.streamEvents = DefaultStreamEvents
	case s.streamEvents < 0:
		s.streamEvents = 0
	}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	s.events = newEventCache()

	s.route("GET /healthz", public, s.healthz)
	s.route("GET /v1/catalog", public, s.catalog)
	s.route("POST /v1/estimate", public, s.estimate)
	s.route("POST /v1/api-keys", admin, s.createAPIKey)
	s.route("GET /v1/api-keys", admin, s.listAPIKeys)
	s.route("DELETE /v1/api-keys/{id}", admin, s.revokeAPIKey)
	s.route("POST /v1/workspaces", admin, s.createWorkspace)
	// A session token is valid only for its workspace's balance, balance
	// stream, ledger and charges (contract, Auth): not the workspace itself.
	s.route("GET /v1/workspaces/{id}", keyReader, s.getWorkspace)
	s.route("GET /v1/workspaces/{id}/balance", reader, s.balance)
	s.route("GET /v1/workspaces/{id}/balance/stream", reader, s.capStreams(s.balanceStream))
	s.route("POST /v1/workspaces/{id}/session-tokens", issuer, s.createSessionToken)
	s.route("POST /v1/workspaces/{id}/charges", operator, s.createCharge)
	s.route("PUT /v1/workspaces/{id}/plan", admin, s.changePlan)
	s.route("POST /v1/workspaces/{id}/adjustments", admin, s.adjust)
	s.route("GET /v1/workspaces/{id}/ledger", reader, s.ledger)
	s.route("POST /v1/workspaces/{id}/ai/{operation}", operator, s.runAI)
	s.route("GET /v1/charges/{id}", reader, s.getCharge)
	s.route("POST /v1/charges/{id}/capture", operator, s.capture)
	s.route("POST /v1/charges/{id}/release", operator, s.release)
	s.route("GET /v1/admin/verify", admin, s.verify)
	return s
}

// Handle mounts another handler (the demo page, AI operations) on the API's
// mux, behind the same auth: the handler gets the principal from the
// request's context with PrincipalFrom.
func (s *Server) Handle(pattern string, a Access, h http.HandlerFunc) { s.route(pattern, a, h) }

// Public is the access level of routes that need no credential, for other
// packages' routes (the demo page).
const Public = public

// Drain makes the server refuse new requests with 503 and ends balance
// streams; call it when shutdown starts.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.endStreams()
}

type principalKey struct{}

// PrincipalFrom returns the authenticated principal of a request.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) route(pattern string, a Access, h any) {
	var fn handlerFunc
	switch h := h.(type) {
	case func(http.ResponseWriter, *http.Request) error:
		fn = h
	case handlerFunc:
		fn = h
	case http.HandlerFunc:
		fn = func(w http.ResponseWriter, r *http.Request) error { h(w, r); return nil }
	case func(http.ResponseWriter, *http.Request):
		fn = func(w http.ResponseWriter, r *http.Request) error { h(w, r); return nil }
	default:
		panic("httpapi: bad handler for " + pattern)
	}
	byCharge := strings.HasPrefix(pattern, "GET /v1/charges") || strings.HasPrefix(pattern, "POST /v1/charges")
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		var p auth.Principal
		var authErr error
		if a != public {
			p, authErr = s.authenticate(r)
		}
		if s.rateLimited(w, r, p, a != public && authErr == nil) {
			return
		}
		if a != public {
			if err := authErr; err != nil {
				w.Header()["Www-Authenticate"] = wwwAuthenticate
				writeProblem(w, r, s.log, err)
				return
			}
			if err := allowed(p, a, r.PathValue("id"), byCharge); err != nil {
				writeProblem(w, r, s.log, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		if err := fn(w, r); err != nil {
			writeProblem(w, r, s.log, err)
		}
	})
}

// Header values set on every answer of their kind, shared: net/http only
// reads them (and copies the header when the answer is written).
var (
	wwwAuthenticate = []string{`Bearer realm="credits"`}
	contentTypeJSON = []string{"application/json"}
	contentTypeProb = []string{"application/problem+json"}
	noStore         = []string{"no-store"}
	retryAfter1     = []string{"1"}
)

func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	h := r.Header.Get("Authorization")
	var secret string
	switch {
	case h != "":
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return auth.Principal{}, credits.Errorf(credits.CodeUnauthorized, "the Authorization header must be \"Bearer <secret>\"")
		}
		secret = strings.TrimSpace(rest)
	case strings.HasSuffix(r.URL.Path, "/balance/stream"):
		// EventSource cannot set headers: the stream takes the secret
		// in the query.
		secret = r.URL.Query().Get("access_token")
	}
	return s.auth.Authenticate(r.Context(), secret)
}

func forbidden(msg string) error { return credits.Errorf(credits.CodeForbidden, "%s", msg) }

// allowed applies the access rules. byCharge routes name a charge, not a
// workspace: their workspace check happens once the charge is read.
func allowed(p auth.Principal, a Access, workspaceID string, byCharge bool) error {
	if p.Kind == auth.KindSession {
		if a != reader && a != operator {
			return forbidden("a session token cannot do this")
		}
		if !byCharge && workspaceID != p.WorkspaceID {
			return forbidden("this session token is for another workspace")
		}
		return nil
	}
	switch p.Scope {
	case auth.ScopeAdmin:
		return nil
	case auth.ScopeService:
		if a == admin {
			return forbidden("a service key cannot do this; it needs an admin key")
		}
		return nil
	case auth.ScopeRead:
		if a != reader && a != keyReader {
			return forbidden("a read key can only read")
		}
		return nil
	}
	return forbidden("not allowed")
}

// checkWorkspace stops a session token from touching another workspace's
// charge.
func checkWorkspace(r *http.Request, workspaceID string) error {
	p, _ := PrincipalFrom(r.Context())
	if p.Kind == auth.KindSession && p.WorkspaceID != workspaceID {
		return forbidden("this session token is for another workspace")
	}
	return nil
}

// ServeHTTP adds the request id, recovery, draining and the problem+json
// 404 and 405 around the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &responseWriter{ResponseWriter: w}
	rec.id[0] = requestID()
	w.Header()["Request-Id"] = rec.id[:]
	if s.writeTimeout > 0 {
		var ok bool
		if rec.deadlines, ok = w.(writeDeadliner); !ok {
			rec.deadlines = http.NewResponseController(w) // w wraps the connection's writer
		}
		rec.timeout = s.writeTimeout
		rec.extend(time.Now())
	}
	var start time.Time
	debug := s.log.Enabled(r.Context(), slog.LevelDebug)
	if debug {
		start = time.Now()
	}
	defer func() {
		if v := recover(); v != nil {
			rec.routing = nil // the answer below is not the mux's
			s.log.Error("panic", "request_id", rec.id[0], "panic", v, "stack", string(runtimedebug.Stack()))
			if rec.status == 0 {
				writeProblem(rec, r, s.log, credits.Errorf(credits.CodeInternal, "internal error (request %s)", rec.id[0]))
			}
		}
		if debug {
			s.log.Debug("request", "id", rec.id[0], "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
		}
	}()
	if s.draining.Load() && r.URL.Path != "/healthz" {
		rec.Header().Set("Connection", "close")
		writeProblem(rec, r, s.log, credits.Errorf(credits.CodeUnavailable, "the server is shutting down; retry on another instance"))
		return
	}
	// One match: the mux sets r.Pattern before it calls the handler, and
	// an empty one means its own 404, 405 or redirect: those answers are
	// dropped (see responseWriter.mux) and the problem+json one written.
	rec.routing = r
	s.mux.ServeHTTP(rec, r)
	rec.routing = nil
	if rec.unrouted {
		s.notRouted(rec, r)
	}
}

// notRouted answers 405 (with Allow) when the path exists for another
// method, else 404.
func (s *Server) notRouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.mux.Handler(r2); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, r, s.log, credits.Errorf(credits.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeProblem(w, r, s.log, credits.Errorf(credits.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
}

// responseWriter records the status an answer was given and, with a write
// timeout, keeps the connection's write deadline ahead of the writes (see
// ratelimit_deadline.go). One value per request holds both, and the request
// id's header value.
type responseWriter struct {
	http.ResponseWriter
	status int
	id     [1]string
	// deadlines is the connection's (nil: no write timeout); the deadline
	// was last set to extended + timeout.
	deadlines writeDeadliner
	timeout   time.Duration
	extended  time.Time
	// routing is the request while the mux serves it. When the mux found no
	// route (its Pattern is empty), what it writes is dropped: unrouted is
	// set, and ServeHTTP writes the problem.
	routing  *http.Request
	unrouted bool
	dropped  http.Header
}

// mux reports whether the mux itself is answering (no route matched): what
// it writes must be dropped.
func (r *responseWriter) mux() bool {
	if r.routing == nil || r.routing.Pattern != "" {
		return false
	}
	r.unrouted = true
	return true
}

func (r *responseWriter) Header() http.Header {
	if r.mux() {
		if r.dropped == nil {
			r.dropped = http.Header{}
		}
		return r.dropped
	}
	return r.ResponseWriter.Header()
}

func (r *responseWriter) WriteHeader(code int) {
	if r.mux() {
		return
	}
	if r.deadlines != nil {
		r.extend(time.Now())
	}
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseWriter) Write(b []byte) (int, error) {
	if r.mux() {
		return len(b), nil
	}
	if r.deadlines != nil {
		r.extend(time.Now())
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and the deadlines.
func (r *responseWriter) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// requestID is "req_" and 16 hex digits: unique, not secret.
func requestID() string {
	const digits = "0123456789abcdef"
	var b [20]byte
	copy(b[:], "req_")
	v := mathrand.Uint64()
	for i := 19; i >= 4; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}
