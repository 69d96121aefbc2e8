package httpapi_test

import (
	"net/http"
	"testing"
	"time"
)

// DELETE /v1/api-keys/{id} revokes a key: its secret gets 401 from then on,
// the list shows revoked_at, revoking again answers the same, an unknown id
// is 404, and the other keys keep working.
func TestRevokeAPIKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "w", "")
	mk := func(scope string) (id, secret string) {
		r := b.req(t, "POST", "/v1/api-keys", adminKey, map[string]any{"name": scope + " key", "scope": scope})
		wantStatus(t, r, http.StatusCreated)
		k := r.json(t)
		return k["id"].(string), k["secret"].(string)
	}
	victim, victimSecret := mk("service")
	_, otherSecret := mk("read")
	adminID, adminSecret := mk("admin")
	wantStatus(t, b.req(t, "GET", "/v1/workspaces/w/balance", victimSecret, nil), 200)

	b.clock.Advance(time.Minute)
	r := b.req(t, "DELETE", "/v1/api-keys/"+victim, adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	k := r.json(t)
	hasKeys(t, "revoked key", k, "id", "name", "scope", "created_at", "revoked_at")
	if _, ok := k["secret"]; ok || k["id"] != victim {
		t.Fatalf("revoked %v", k)
	}
	wantTime(t, "revoked_at", k["revoked_at"], epoch.Add(time.Minute))

	for _, path := range []string{"/v1/workspaces/w/balance", "/v1/workspaces/w/ledger"} {
		wantProblem(t, b.req(t, "GET", path, victimSecret, nil), http.StatusUnauthorized, "unauthorized", "")
	}
	wantProblem(t, b.req(t, "POST", "/v1/workspaces/w/charges", victimSecret, map[string]any{"operation": "image_1k"}, "Idempotency-Key: r1"),
		http.StatusUnauthorized, "unauthorized", "")
	wantStatus(t, b.req(t, "GET", "/v1/workspaces/w/balance", otherSecret, nil), 200)

	// Again: the same answer, revoked_at unchanged.
	b.clock.Advance(time.Minute)
	again := b.req(t, "DELETE", "/v1/api-keys/"+victim, adminKey, nil)
	wantStatus(t, again, http.StatusOK)
	wantTime(t, "revoked_at", again.json(t)["revoked_at"], epoch.Add(time.Minute))

	wantProblem(t, b.req(t, "DELETE", "/v1/api-keys/key_nope", adminKey, nil), http.StatusNotFound, "not_found", "")
	wantProblem(t, b.req(t, "DELETE", "/v1/api-keys/"+victim, otherSecret, nil), http.StatusForbidden, "forbidden", "")

	var list struct {
		Keys []map[string]any `json:"api_keys"`
	}
	lr := b.req(t, "GET", "/v1/api-keys", adminKey, nil)
	wantStatus(t, lr, 200)
	lr.decode(t, &list)
	if len(list.Keys) != 3 {
		t.Fatalf("listed %s", lr.body)
	}
	for _, k := range list.Keys {
		if revoked := k["revoked_at"] != nil; revoked != (k["id"] == victim) {
			t.Fatalf("listed %v", k)
		}
	}

	// An admin API key may revoke itself; its next request is refused.
	wantStatus(t, b.req(t, "DELETE", "/v1/api-keys/"+adminID, adminSecret, nil), http.StatusOK)
	wantProblem(t, b.req(t, "GET", "/v1/api-keys", adminSecret, nil), http.StatusUnauthorized, "unauthorized", "")
}
