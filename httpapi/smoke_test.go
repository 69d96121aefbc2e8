package httpapi_test

import (
	"net/http"
	"testing"
)

func TestHarness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	r := b.req(t, "POST", "/v1/workspaces/w/charges", adminKey, map[string]any{"operation": "image_1k", "capture": true}, "Idempotency-Key: k1")
	wantStatus(t, r, http.StatusCreated)
	if bal := b.check(t, "w"); bal.Available != 220 || bal.Used != 30 {
		t.Fatalf("balance %+v", bal)
	}
	wantProblem(t, b.req(t, "GET", "/v1/workspaces/w/balance", "", nil), http.StatusUnauthorized, "unauthorized", "")
}
