package httpapi_test

import (
	"iter"
	"net/http"
	"os"
	"regexp"
	"testing"
)

// routePattern finds the routes New registers in server.go.
var routePattern = regexp.MustCompile(`s\.route\("([A-Z]+ /[^"]*)"`)

// coversEveryRoute fails the test when a route registered in server.go is
// not among the requests (method and path) the test makes: a new route
// must join the auth matrix.
func coversEveryRoute(t *testing.T, requests iter.Seq2[string, string]) {
	t.Helper()
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var patterns []string
	for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
		patterns = append(patterns, m[1])
		mux.HandleFunc(m[1], func(http.ResponseWriter, *http.Request) {})
	}
	if len(patterns) < 10 {
		t.Fatalf("found only %d routes in server.go: %q", len(patterns), patterns)
	}
	covered := map[string]bool{}
	for method, path := range requests {
		r, err := http.NewRequest(method, "http://test"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, p := mux.Handler(r); p != "" {
			covered[p] = true
		}
	}
	for _, p := range patterns {
		if !covered[p] {
			t.Errorf("route %q of server.go is not in the auth matrix", p)
		}
	}
}
