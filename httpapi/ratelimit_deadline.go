package httpapi

import (
	"net/http"
	"time"
)

// The server's WriteTimeout must stay 0: it would cut every balance stream
// off after it. Instead each response gets a write deadline of its own:
// WriteTimeout from when the request arrives (covering what the server
// writes before the handler does, like 100 Continue), pushed back by every
// write of the handler. So an answer that takes long to compute (an AI
// operation) is not cut off, a stream lives as long as it keeps writing, and
// a client that stops reading is disconnected WriteTimeout after a write
// blocks. On a kept-alive connection the next request sets its own.

// deadlineWriter refreshes the connection's write deadline before each
// write.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// withWriteDeadline wraps w when a write timeout is configured.
func (s *Server) withWriteDeadline(w http.ResponseWriter) http.ResponseWriter {
	if s.writeTimeout <= 0 {
		return w
	}
	d := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: s.writeTimeout}
	d.extend()
	return d
}

func (d *deadlineWriter) extend() { _ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout)) }

func (d *deadlineWriter) WriteHeader(code int) {
	d.extend()
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	d.extend()
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and the deadlines.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
