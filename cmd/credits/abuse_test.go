package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits/internal/testserver"
)

// Slow and silent clients cannot hold a connection: a client that sends
// its headers a byte at a time is cut off at --read-header-timeout, one
// that connects and sends nothing likewise, an idle kept-alive connection at
// --idle-timeout, and headers over 64 KiB get 431.
func TestServeSlowClients(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "credits.db")
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db,
		"--read-header-timeout", "400ms", "--read-timeout", "1s", "--idle-timeout", "600ms"},
		env{"CREDITS_ADMIN_KEY": testAdminKey})
	addr := strings.TrimPrefix(s.url, "http://")

	// closedWithin dials, runs send, and reports how long until the
	// server closed the connection (failing after limit).
	closedWithin := func(t *testing.T, limit time.Duration, send func(c net.Conn) error) time.Duration {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			_, _ = io.Copy(io.Discard, c) // returns when the server closes
		}()
		go func() { _ = send(c) }()
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(limit):
			t.Fatalf("the connection is still open after %s", limit)
		}
		return 0
	}

	t.Run("headers a byte at a time", func(t *testing.T) {
		t.Parallel()
		req := "GET /v1/catalog HTTP/1.1\r\nHost: credits\r\nX-Slow: " + strings.Repeat("a", 400) + "\r\n\r\n"
		took := closedWithin(t, 5*time.Second, func(c net.Conn) error {
			for i := range len(req) {
				if _, err := c.Write([]byte{req[i]}); err != nil {
					return err
				}
				time.Sleep(20 * time.Millisecond) // the whole request would take 8 s
			}
			return nil
		})
		if took < 300*time.Millisecond {
			t.Fatalf("cut off after %s, before the header timeout", took)
		}
	})
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		closedWithin(t, 5*time.Second, func(net.Conn) error { return nil })
	})
	t.Run("idle after a request", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: credits\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("healthz %d", res.StatusCode)
		}
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection: %v after %s, want it closed by the server", err, time.Since(start))
		}
	})
	t.Run("huge headers", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest("GET", s.url+"/v1/catalog", nil)
		req.Header.Set("X-Big", strings.Repeat("b", 70<<10))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", res.StatusCode)
		}
	})
}

// CREDITS_RATE_LIMIT over a real server: 429 rate_limited with Retry-After
// per credential; 0 turns limits off.
func TestServeRateLimit(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "credits.db")
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db},
		env{"CREDITS_ADMIN_KEY": testAdminKey, "CREDITS_RATE_LIMIT": "1/m", "CREDITS_RATE_BURST": "3"})
	// The admin key's bucket, then the client address's (public routes
	// count against the address).
	for _, tc := range []struct{ key, path string }{{testAdminKey, "/v1/api-keys"}, {"", "/v1/catalog"}} {
		key := tc.key
		for i := range 3 {
			if code, b := call(t, "GET", s.url+tc.path, key, ""); code != 200 {
				t.Fatalf("request %d: %d %s", i, code, b)
			}
		}
		res := testserver.Call(t, "GET", s.url+tc.path, key, "")
		if res.Status != 429 || !strings.Contains(string(res.Body), `"code":"rate_limited"`) || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("over the limit: %d %s", res.Status, res.Body)
		}
		if ra := res.Header.Get("Retry-After"); ra != "60" && ra != "59" {
			t.Fatalf("Retry-After %q, want about 60", ra)
		}
	}
	if !strings.Contains(s.log.String(), "rate_limit=0.016") {
		t.Errorf("the log does not state the limits:\n%s", s.log)
	}

	off := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "off.db"), "--rate-limit", "0"},
		env{"CREDITS_ADMIN_KEY": testAdminKey})
	for i := range 200 {
		if code, b := call(t, "GET", off.url+"/v1/catalog", testAdminKey, ""); code != 200 {
			t.Fatalf("limits off, request %d: %d %s", i, code, b)
		}
	}
}

// --max-streams caps one workspace's open balance streams.
func TestServeStreamCap(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "credits.db")
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db, "--max-streams", "2"}, env{"CREDITS_ADMIN_KEY": testAdminKey})
	callJSON(t, 201, "POST", s.url+"/v1/workspaces", testAdminKey, `{"id":"w","name":"W"}`, nil)
	open := func() *http.Response {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/v1/workspaces/w/balance/stream", nil)
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	for range 2 {
		if res := open(); res.StatusCode != 200 {
			t.Fatalf("stream: %d", res.StatusCode)
		}
	}
	res := open()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 429 || !strings.Contains(string(body), `"code":"rate_limited"`) || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d %s", res.StatusCode, body)
	}
}

// --stream-events reaches the server: with two streams sharing two events
// a second, each waits a second between events (500 ms by default).
func TestServeStreamEvents(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "credits.db")
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db, "--stream-events", "2", "--rate-limit", "0"}, env{"CREDITS_ADMIN_KEY": testAdminKey})
	if !strings.Contains(s.log.String(), "stream_events_per_workspace=2/s") {
		t.Errorf("the log does not name the bound:\n%s", s.log)
	}
	callJSON(t, 201, "POST", s.url+"/v1/workspaces", testAdminKey, `{"id":"w","name":"W","plan":"pro"}`, nil)
	var bodies []io.Reader
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/v1/workspaces/w/balance/stream", nil)
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stream: %v %v", res, err)
		}
		t.Cleanup(func() { res.Body.Close() })
		bodies = append(bodies, res.Body)
	}
	times := make(chan time.Time, 100)
	go func() {
		defer close(times)
		sc := bufio.NewScanner(bodies[0])
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				times <- time.Now()
			}
		}
	}()
	<-times // the balance at connect
	start := time.Now()
	for i := 0; time.Since(start) < 2500*time.Millisecond; i++ {
		callJSON(t, 201, "POST", s.url+"/v1/workspaces/w/charges", testAdminKey, `{"operation":"content_rewrite","capture":true}`, nil, "Idempotency-Key", fmt.Sprint("k", i))
		time.Sleep(2 * time.Millisecond) // a change every few ms, within pro's 5,000 credits
	}
	var got []time.Time
	for len(got) < 3 {
		select {
		case at := <-times:
			got = append(got, at)
		case <-time.After(5 * time.Second):
			t.Fatalf("%d events after 2.5 s of charges", len(got))
		}
	}
	for i := 1; i < len(got); i++ {
		if gap := got[i].Sub(got[i-1]); gap < 800*time.Millisecond {
			t.Errorf("events %v apart, want about 1 s", gap)
		}
	}
}

// Key rotation without downtime, over a real server: the previous admin key
// works beside the new one until CREDITS_ADMIN_KEY_PREVIOUS_UNTIL, then
// only the new one does.
func TestServeAdminKeyRotation(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "credits.db")
	const oldKey, newKey = "old-admin-key-0123456789", "new-admin-key-0123456789"
	first := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, env{"CREDITS_ADMIN_KEY": oldKey})
	callJSON(t, 201, "POST", first.url+"/v1/workspaces", oldKey, `{"id":"w","name":"W"}`, nil)
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}

	until := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	s := startServe(t, []string{"--addr", "127.0.0.1:0", "--db", db}, env{"CREDITS_ADMIN_KEY": newKey,
		"CREDITS_ADMIN_KEY_PREVIOUS": oldKey, "CREDITS_ADMIN_KEY_PREVIOUS_UNTIL": until.UTC().Format(time.RFC3339)})
	if !strings.Contains(s.log.String(), "previous admin key stays valid") {
		t.Errorf("the log does not say the previous key is valid:\n%s", s.log)
	}
	for _, k := range []string{oldKey, newKey} {
		getBalance(t, s.url, k, "w")
	}
	if code, _ := call(t, "GET", s.url+"/v1/workspaces/w/balance", "other-key", ""); code != 401 {
		t.Fatalf("another key: %d", code)
	}
	time.Sleep(time.Until(until) + 50*time.Millisecond)
	if code, b := call(t, "GET", s.url+"/v1/workspaces/w/balance", oldKey, ""); code != 401 || !strings.Contains(string(b), "unauthorized") {
		t.Fatalf("the previous key after its expiry: %d %s", code, b)
	}
	getBalance(t, s.url, newKey, "w")
}
