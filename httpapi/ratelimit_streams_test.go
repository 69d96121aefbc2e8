package httpapi_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits/httpapi"
)

// Each workspace has a cap on open balance streams: over it, 429
// rate_limited with Retry-After and nothing opened; other workspaces are not
// affected; a closed stream frees its slot.
func TestStreamCapPerWorkspace(t *testing.T) {
	t.Parallel()
	b, _ := limitedServer(t, httpapi.Config{MaxStreamsPerWorkspace: 2, KeepAlive: 50 * time.Millisecond}, nil)
	ctx := context.Background()
	for _, ws := range []string{"w", "w2"} {
		if _, _, err := b.engine.CreateWorkspace(ctx, ledgerParams(ws)); err != nil {
			t.Fatal(err)
		}
	}
	tok, _, err := b.auth.IssueSession("w", "m1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	open := func(ws, header string) (streamResp, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", b.url+"/v1/workspaces/"+ws+"/balance/stream", nil)
		req.Header.Set("Authorization", header)
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		s := streamResp{response: response{status: res.StatusCode, header: res.Header}}
		if res.StatusCode == http.StatusOK {
			s.events = bufio.NewReader(res.Body)
			s.next(t) // the first balance: the stream is open
		} else {
			var sb strings.Builder
			_, _ = bufio.NewReader(res.Body).WriteTo(&sb)
			s.body = []byte(sb.String())
		}
		return s, cancel
	}
	first, closeFirst := open("w", "Bearer "+adminKey)
	second, _ := open("w", "Bearer "+tok)
	wantStatus(t, first.response, 200)
	wantStatus(t, second.response, 200)
	over, _ := open("w", "Bearer "+tok)
	wantProblem(t, over.response, http.StatusTooManyRequests, "rate_limited", "")
	if ra := over.header.Get("Retry-After"); ra != "5" {
		t.Fatalf("Retry-After %q", ra)
	}
	other, _ := open("w2", "Bearer "+adminKey)
	wantStatus(t, other.response, 200)
	// An unauthorized caller takes no slot and gets 401, not 429.
	unauth, _ := open("w", "Bearer crk_wrong")
	wantProblem(t, unauth.response, http.StatusUnauthorized, "unauthorized", "")

	closeFirst()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, cancel := open("w", "Bearer "+adminKey)
		if s.status == 200 {
			cancel()
			break
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("the closed stream's slot was not freed: %d %s", s.status, s.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A balance stream outlives the server's ReadTimeout, which bounds reading
// a request, not how long an answer may stream.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	t.Parallel()
	b, _ := limitedServer(t, httpapi.Config{KeepAlive: 50 * time.Millisecond, WriteTimeout: time.Second},
		func(s *http.Server) {
			s.ReadTimeout = 200 * time.Millisecond
			s.ReadHeaderTimeout = 100 * time.Millisecond
		})
	if _, _, err := b.engine.CreateWorkspace(context.Background(), ledgerParams("w")); err != nil {
		t.Fatal(err)
	}
	s := b.stream(t, "/v1/workspaces/w/balance/stream", "Bearer "+adminKey)
	wantStatus(t, s.response, 200)
	end := time.Now().Add(1500 * time.Millisecond)
	keepAlives := 0
	for time.Now().Before(end) {
		for _, l := range s.next(t) {
			if strings.HasPrefix(l, ": keep-alive") {
				keepAlives++
			}
		}
	}
	if keepAlives < 10 {
		t.Fatalf("%d keep-alives in 1.5 s", keepAlives)
	}
}
