package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/credits-dev/credits/httpapi"
)

// A handler that panics answers 500 problem+json with its request id; the
// panic never reaches the client as a cut connection.
func TestPanicAnswersInternalProblem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.Handle("GET /test/panic", httpapi.Public, func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	r := b.req(t, "GET", "/test/panic", "", nil)
	wantProblem(t, r, 500, "internal", "")
	if id := r.header.Get("Request-Id"); len(id) != len("req_")+16 {
		t.Fatalf("Request-Id %q", id)
	}
}
