package httpapi

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/auth"
)

// RateLimit configures per-credential request rate limits: a token bucket
// for the admin key, for each API key, for each session (workspace and
// member), and for each client IP address (requests without a valid
// credential, and public routes). The zero value turns limits off.
type RateLimit struct {
	// Rate is the sustained requests per second each bucket allows; 0 (or
	// less) turns rate limits off.
	Rate float64
	// Burst is how many requests a bucket holds (at least 1).
	Burst int
	// MaxBuckets bounds the memory the buckets take (default 100,000).
	// Idle buckets are evicted first; past the bound, arbitrary ones are.
	MaxBuckets int
	// NowFunc is the clock (time.Now by default).
	NowFunc func() time.Time
}

const (
	defaultMaxBuckets = 100_000
	// sweepEvery is how often idle buckets are evicted.
	sweepEvery = time.Minute
)

// limiter holds the buckets. One mutex guards the map; each bucket has its
// own for the arithmetic.
type limiter struct {
	rate  rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// newLimiter returns nil when limits are off.
func newLimiter(c RateLimit) *limiter {
	if c.Rate <= 0 || math.IsNaN(c.Rate) {
		return nil
	}
	l := &limiter{rate: rate.Limit(c.Rate), burst: max(c.Burst, 1), max: c.MaxBuckets, now: c.NowFunc}
	if l.max <= 0 {
		l.max = defaultMaxBuckets
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.buckets = make(map[string]*rate.Limiter)
	l.lastSweep = l.now()
	return l
}

// allow takes a token from key's bucket. When it is empty, it returns how
// long until the next token.
func (l *limiter) allow(key string) (bool, time.Duration) { return l.allowKey([]byte(key)) }

// allowKey is allow with the key in bytes: looking an existing bucket up
// allocates nothing (only a new bucket's key is made a string).
func (l *limiter) allowKey(key []byte) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	b, ok := l.buckets[string(key)]
	if !ok {
		l.makeRoom(now)
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[string(key)] = b
	} else if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	l.mu.Unlock()
	if b.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.TokensAt(now)
	return false, time.Duration(missing / float64(l.rate) * float64(time.Second))
}

// sweep evicts idle buckets: full ones, which a new bucket would equal.
// The caller holds l.mu.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}

// makeRoom keeps the map under its bound before a bucket is added: first
// by sweeping idle buckets (at most once a second, as sweeping is linear),
// then by evicting arbitrary ones (map order is random). An evicted busy
// bucket starts over full: at worst one more burst for its credential.
// The caller holds l.mu.
func (l *limiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.max {
		if now.Sub(l.lastSweep) >= sweepEvery {
			l.sweep(now)
		}
		return
	}
	if now.Sub(l.lastSweep) >= time.Second {
		l.sweep(now)
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max {
			break
		}
		delete(l.buckets, k)
	}
}

// size is the number of buckets held (for tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// appendRateKey appends the name of the bucket a request counts against to
// b: its credential when it authenticated, else its client address.
func appendRateKey(b []byte, r *http.Request, p auth.Principal, authenticated bool) []byte {
	if authenticated {
		switch p.Kind {
		case auth.KindAdminKey:
			return append(b, "admin"...)
		case auth.KindAPIKey:
			return append(append(b, "key:"...), p.KeyID...)
		case auth.KindSession:
			b = append(append(b, "session:"...), p.WorkspaceID...)
			return append(append(b, 0), p.MemberID...)
		}
	}
	return append(append(b, "ip:"...), clientIP(r.RemoteAddr)...)
}

// clientIP is the address a request came from; IPv6 addresses count by
// their /64, which one client usually holds whole. X-Forwarded-For is not
// trusted: anyone can send it.
func clientIP(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			return remote
		}
		return host
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// rateLimited counts a request against its bucket (see appendRateKey) and, when
// the bucket is empty, answers 429 rate_limited with Retry-After (whole
// seconds, at least 1) and returns true. /healthz is never limited: a load
// balancer must not take an instance out because it is busy.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, p auth.Principal, authenticated bool) bool {
	if s.limits == nil || r.URL.Path == "/healthz" {
		return false
	}
	var buf [128]byte
	ok, wait := s.limits.allowKey(appendRateKey(buf[:0], r, p, authenticated))
	if ok {
		return false
	}
	secs := int64(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeProblem(w, r, s.log, credits.Errorf(credits.CodeRateLimited, "too many requests with this credential; retry after %d s", secs))
	return true
}
