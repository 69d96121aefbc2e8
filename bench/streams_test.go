package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The bench's stream readers, over plain HTTP and TLS: each reads its
// events off its own connection, and close ends every one of them (the
// server sees each request's end).
func TestStreamsReadEveryEventAndClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(http.Handler) *httptest.Server
	}{
		{"http", httptest.NewServer},
		{"https", httptest.NewTLSServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var open, ended atomic.Int64
			srv := tc.start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/workspaces/ws 1/balance/stream" || r.URL.Query().Get("access_token") != "tok&en" {
					http.Error(w, "wrong request "+r.URL.String(), http.StatusBadRequest)
					return
				}
				open.Add(1)
				defer ended.Add(1)
				w.Header().Set("Content-Type", "text/event-stream")
				for used := range 4 {
					fmt.Fprintf(w, "event: balance\ndata: {\"available\":%d,\"used\":%d}\n\n: keep-alive\n\n", 100-used, used)
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done()
			}))
			defer srv.Close()
			var conf *tls.Config
			if tr, ok := srv.Client().Transport.(*http.Transport); ok {
				conf = tr.TLSClientConfig
			}
			s, err := openStreams(context.Background(), srv.URL, "tok&en", "ws 1", 5, conf)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.waitFinal(3, 5*time.Second); got != 5 {
				t.Errorf("%d of 5 streams saw the last event", got)
			}
			if got := s.opened.Load(); got != 5 || open.Load() != 5 {
				t.Errorf("opened %d, the server saw %d", got, open.Load())
			}
			s.close()
			deadline := time.Now().Add(5 * time.Second)
			for ended.Load() != 5 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if ended.Load() != 5 {
				t.Errorf("after close the server still has %d streams", 5-ended.Load())
			}
		})
	}
}

func TestStreamsRefusedSayWhy(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	_, err := openStreams(context.Background(), srv.URL, "x", "ws", 3, nil)
	if err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("err = %v, want the status", err)
	}
}
