package httpapi_test

import (
	"bufio"
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
)

// newBundle is setup for any testing.TB (fuzz targets set up once per
// worker), also returning the API so tests can drain it.
func newBundle(tb testing.TB) (*testBundle, *httpapi.Server) {
	tb.Helper()
	b := setup(tb, setupOpts{keepAlive: 50 * time.Millisecond})
	return b, b.api
}

// ledgerAll reads a workspace's whole ledger, newest first.
func (b *testBundle) ledgerAll(t *testing.T, id string) []map[string]any {
	t.Helper()
	var all []map[string]any
	path := "/v1/workspaces/" + id + "/ledger?limit=500"
	for {
		r := b.req(t, "GET", path, adminKey, nil)
		wantStatus(t, r, http.StatusOK)
		var page struct {
			Entries    []map[string]any `json:"entries"`
			NextCursor *string          `json:"next_cursor"`
		}
		r.decode(t, &page)
		all = append(all, page.Entries...)
		if page.NextCursor == nil {
			return all
		}
		path = "/v1/workspaces/" + id + "/ledger?limit=500&cursor=" + url.QueryEscape(*page.NextCursor)
	}
}

// snapshot is what must not change when a request fails.
type snapshot struct {
	bal     credits.Balance
	entries int
}

func (b *testBundle) snap(t *testing.T, id string) snapshot {
	t.Helper()
	return snapshot{bal: b.check(t, id), entries: len(b.ledgerAll(t, id))}
}

// unchanged asserts a workspace's balance and ledger are as in s.
func (b *testBundle) unchanged(t *testing.T, id string, s snapshot) {
	t.Helper()
	if now := b.snap(t, id); now != s {
		t.Fatalf("workspace %s changed: before %+v, after %+v", id, s, now)
	}
}

// streamResp is an opened balance stream (or the problem that refused it).
type streamResp struct {
	response
	events *bufio.Reader
}

// stream opens a balance stream; the connection closes with the test.
func (b *testBundle) stream(t *testing.T, path, secret string) streamResp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", b.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", secret)
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	out := streamResp{response: response{status: res.StatusCode, header: res.Header}}
	if res.StatusCode != http.StatusOK {
		var sb strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&sb)
		out.body = []byte(sb.String())
		return out
	}
	out.events = bufio.NewReader(res.Body)
	return out
}

// next reads the stream up to the next blank line and returns the block's
// lines.
func (s streamResp) next(t *testing.T) []string {
	t.Helper()
	var lines []string
	for {
		line, err := s.events.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (read %q)", err, lines)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			if len(lines) > 0 {
				return lines
			}
			continue
		}
		lines = append(lines, line)
	}
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// hasKeys asserts that a JSON object has every key named.
func hasKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("%s has no %q: %v", what, k, m)
		}
	}
}

// wantTime asserts that a JSON value is an RFC 3339 UTC time equal to want.
func wantTime(t *testing.T, what string, v any, want time.Time) {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s is %v, want a time string", what, v)
	}
	got, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s %q is not RFC 3339: %v", what, s, err)
	}
	if !strings.HasSuffix(s, "Z") {
		t.Fatalf("%s %q is not UTC", what, s)
	}
	if !got.Equal(want) {
		t.Fatalf("%s is %s, want %s", what, got, want)
	}
}

// ledgerParams makes a pro workspace's parameters.
func ledgerParams(id string) ledger.CreateWorkspaceParams {
	return ledger.CreateWorkspaceParams{ID: id, Name: "Workspace " + id, Plan: "pro"}
}
