package httpapi_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/credits-dev/credits/httpapi"
)

// A client that sends a request and never reads the answer cannot hold the
// handler (and its connection) for ever: with a write timeout the blocked
// write fails. Without one it would block until the client goes.
func TestWriteDeadlineCutsOffANonReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		cut     bool
	}{
		{"write timeout 300ms", 300 * time.Millisecond, true},
		{"no write timeout", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, srv := limitedServer(t, httpapi.Config{WriteTimeout: tc.timeout}, nil)
			done := make(chan error, 1)
			b.api.Handle("GET /test/flood", httpapi.Public, func(w http.ResponseWriter, r *http.Request) {
				chunk := make([]byte, 64<<10)
				for {
					if _, err := w.Write(chunk); err != nil {
						done <- err
						return
					}
					if r.Context().Err() != nil {
						done <- r.Context().Err()
						return
					}
				}
			})
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprint(conn, "GET /test/flood HTTP/1.1\r\nHost: test\r\n\r\n")
			// The client never reads.
			wait := 10 * time.Second
			if !tc.cut {
				wait = 1500 * time.Millisecond
			}
			select {
			case err := <-done:
				if !tc.cut {
					t.Fatalf("the write failed (%v) without a write timeout", err)
				}
			case <-time.After(wait):
				if tc.cut {
					t.Fatalf("the handler still writes %s after the write timeout", wait)
				}
				conn.Close() // lets the handler go
				<-done
			}
		})
	}
}
