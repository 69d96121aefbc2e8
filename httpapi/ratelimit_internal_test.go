package httpapi

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/credits-dev/credits/auth"
)

// The buckets' memory is bounded: idle buckets are swept, and past
// MaxBuckets arbitrary ones are evicted.
func TestLimiterBoundedMemory(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	t.Run("cap", func(t *testing.T) {
		l := newLimiter(RateLimit{Rate: 1, Burst: 2, MaxBuckets: 100, NowFunc: clock})
		for i := range 10_000 {
			if ok, _ := l.allow(fmt.Sprint("ip:", i)); !ok {
				t.Fatalf("a new bucket refused request %d", i)
			}
			if n := l.size(); n > 100 {
				t.Fatalf("%d buckets, more than the cap", n)
			}
		}
	})
	t.Run("idle buckets go", func(t *testing.T) {
		l := newLimiter(RateLimit{Rate: 10, Burst: 5, NowFunc: clock})
		for i := range 500 {
			l.allow(fmt.Sprint("key:", i))
		}
		// One bucket stays busy: emptied just before the sweep.
		now = now.Add(sweepEvery)
		for range 5 {
			l.allow("key:busy")
		}
		l.allow("key:busy")
		if n := l.size(); n != 1 {
			t.Fatalf("%d buckets after the sweep, want the busy one", n)
		}
		if ok, _ := l.allow("key:busy"); ok {
			t.Fatal("the busy bucket was reset by the sweep")
		}
	})
	t.Run("off", func(t *testing.T) {
		for _, r := range []RateLimit{{}, {Rate: -1, Burst: 5}} {
			if l := newLimiter(r); l != nil {
				t.Fatalf("%+v: limits on", r)
			}
		}
	})
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"@unix", "@unix"},
		{"", ""},
	} {
		if got := clientIP(tc.remote); got != tc.want {
			t.Errorf("clientIP(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// BenchmarkRateLimited is the limiter's cost on every request of an API key
// (limits are on by default).
func BenchmarkRateLimited(b *testing.B) {
	s := &Server{limits: newLimiter(RateLimit{Rate: 1e9, Burst: 1e9})}
	r := httptest.NewRequest("POST", "/v1/charges/ch_1/capture", nil)
	p := auth.Principal{Kind: auth.KindAPIKey, Scope: auth.ScopeService, KeyID: "key_0123456789abcdefghij"}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if s.rateLimited(w, r, p, true) {
			b.Fatal("limited")
		}
	}
}
