package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
)

// FuzzLedgerQuery sends any limit and cursor to GET …/ledger through the
// real server, as query parameters: the answer is a page (200) or 400
// invalid_request naming limit or cursor; never a server error.
func FuzzLedgerQuery(f *testing.F) {
	b, _ := newBundle(f)
	ctx := context.Background()
	const ws = "fq"
	if _, _, err := b.engine.CreateWorkspace(ctx, ledgerParams(ws)); err != nil {
		f.Fatal(err)
	}
	for range 3 {
		if _, err := b.engine.Adjust(ctx, ws, 1, "entries to page"); err != nil {
			f.Fatal(err)
		}
	}
	// A real cursor as a seed.
	page, err := b.engine.Ledger(ctx, ws, 1, "")
	if err != nil || page.NextCursor == nil {
		f.Fatalf("first page %+v: %v", page, err)
	}
	for _, s := range []struct{ limit, cursor string }{
		{"", ""}, {"1", *page.NextCursor}, {"500", ""}, {"0", ""}, {"501", ""}, {"-1", ""}, {"1.5", ""},
		{"99999999999999999999", ""}, {"", "garbage!"}, {"", "bGU6MA"}, {"2", (*page.NextCursor)[1:]},
		{"", *page.NextCursor + "="}, {"", "\x00"}, {"01", ""}, {"+1", ""}, {" 1", ""},
	} {
		f.Add(s.limit, s.cursor)
	}
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		q := url.Values{}
		if limit != "" {
			q.Set("limit", limit)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := b.req(t, "GET", "/v1/workspaces/"+ws+"/ledger?"+q.Encode(), adminKey, nil)
		switch r.status {
		case http.StatusOK:
			var p struct {
				Entries []map[string]any `json:"entries"`
			}
			r.decode(t, &p)
			if p.Entries == nil {
				t.Fatalf("a page without entries: %s", r.body)
			}
		case http.StatusBadRequest:
			p := wantProblem(t, r, 400, "invalid_request", "")
			if f := p["field"]; f != "limit" && f != "cursor" {
				t.Fatalf("a 400 naming %v for limit %q cursor %q", f, limit, cursor)
			}
		default:
			t.Fatalf("status %d for limit %q cursor %q: %s", r.status, limit, cursor, r.body)
		}
	})
}
