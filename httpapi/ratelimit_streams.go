package httpapi

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/credits-dev/credits"
)

// DefaultMaxStreamsPerWorkspace caps the balance streams one workspace may
// hold open on one instance.
const DefaultMaxStreamsPerWorkspace = 5000

// streamRetryAfter is the Retry-After of a stream refused over the cap.
const streamRetryAfter = 5

// streamCap counts open balance streams per workspace. A workspace's entry
// goes when its last stream closes, so memory follows open streams.
type streamCap struct {
	max  int // < 0: no cap
	mu   sync.Mutex
	open map[string]int
}

func newStreamCap(max int) *streamCap {
	if max == 0 {
		max = DefaultMaxStreamsPerWorkspace
	}
	return &streamCap{max: max, open: make(map[string]int)}
}

func (c *streamCap) acquire(ws string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max >= 0 && c.open[ws] >= c.max {
		return false
	}
	c.open[ws]++
	return true
}

func (c *streamCap) release(ws string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[ws] <= 1 {
		delete(c.open, ws)
		return
	}
	c.open[ws]--
}

// count is the number of open streams of a workspace (for tests).
func (c *streamCap) count(ws string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[ws]
}

// capStreams wraps the balance stream: over the workspace's cap it answers
// 429 rate_limited with Retry-After, and nothing is opened. It runs after
// auth, so only a caller allowed to read the workspace holds a slot.
// (A stream outlives the server's ReadTimeout: net/http clears the read
// deadline once the request is read. Its writes have deadlines, see
// ratelimit_deadline.go: a client that stops reading is cut off.)
func (s *Server) capStreams(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ws := r.PathValue("id")
		if !s.streamCap.acquire(ws) {
			w.Header().Set("Retry-After", strconv.Itoa(streamRetryAfter))
			return credits.Errorf(credits.CodeRateLimited, "workspace %q has %d balance streams open, the most allowed; close one", ws, s.streamCap.max)
		}
		defer s.streamCap.release(ws)
		return h(w, r)
	}
}
