package httpapi

import (
	"time"
)

// The server's WriteTimeout must stay 0: it would cut every balance stream
// off after it. Instead each response gets a write deadline of its own:
// WriteTimeout from when the request arrives (covering what the server
// writes before the handler does, like 100 Continue), pushed back by the
// handler's writes (responseWriter in server.go; at most once per
// extendEvery). So an answer that takes long to compute (an AI
// operation) is not cut off, a stream lives as long as it keeps writing, and
// a client that stops reading is disconnected WriteTimeout after a write
// blocks. On a kept-alive connection the next request sets its own.

// writeDeadliner is the connection's side of http.ResponseController's
// SetWriteDeadline, asked of the ResponseWriter directly: no controller to
// allocate per request.
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

// extendEvery is how stale the deadline may get before a write pushes it
// back: a request's writes (header, body) then set it once, not each, and a
// write blocked by a client that stopped reading fails between WriteTimeout
// minus this and WriteTimeout after it began.
func extendEvery(timeout time.Duration) time.Duration { return min(timeout/10, time.Second) }

// extend sets the write deadline timeout from now, unless it was set less
// than extendEvery ago.
func (r *responseWriter) extend(now time.Time) {
	if !r.extended.IsZero() && now.Sub(r.extended) < extendEvery(r.timeout) {
		return
	}
	r.extended = now
	_ = r.deadlines.SetWriteDeadline(now.Add(r.timeout))
}
