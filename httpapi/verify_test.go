package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/credits-dev/credits/httpapi"
	"github.com/credits-dev/credits/ledger"
)

func TestAdminVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createWorkspace(t, "v1", "starter")
	b.createWorkspace(t, "v2", "")
	var ids []string
	for i, op := range []string{"image_1k", "section_generation", "content_rewrite"} {
		r := b.req(t, "POST", "/v1/workspaces/v1/charges", adminKey, map[string]any{"operation": op, "capture": i == 0}, "Idempotency-Key: v-"+op)
		wantStatus(t, r, http.StatusCreated)
		ids = append(ids, r.json(t)["id"].(string))
	}
	wantStatus(t, b.req(t, "POST", "/v1/charges/"+ids[1]+"/release", adminKey, nil), http.StatusOK)

	var ans httpapi.VerifyAnswer
	r := b.req(t, "GET", "/v1/admin/verify", adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &ans)
	if !ans.OK || ans.Workspaces != 2 || ans.Charges != 3 || ans.Cycles != 2 || ans.Entries != 7 || ans.ViolationCount != 0 || ans.Violations == nil {
		t.Fatalf("verify of a healthy store: %s", r.body)
	}

	// Admin only.
	tests := []struct {
		name, secret string
		status       int
		code         string
	}{
		{"none", "", http.StatusUnauthorized, "unauthorized"},
		{"wrong", "nope", http.StatusUnauthorized, "unauthorized"},
		{"read key", b.apiKey(t, "read"), http.StatusForbidden, "forbidden"},
		{"service key", b.apiKey(t, "service"), http.StatusForbidden, "forbidden"},
		{"session", b.session(t, "v1", "alice"), http.StatusForbidden, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, b.req(t, "GET", "/v1/admin/verify", tt.secret, nil), tt.status, tt.code, "")
		})
	}
	wantStatus(t, b.req(t, "GET", "/v1/admin/verify", b.apiKey(t, "admin"), nil), http.StatusOK)

	// A charge whose status and ledger disagree is named.
	if _, err := b.store.DB().ExecContext(context.Background(), `UPDATE charges SET status = 'released' WHERE id = ?`, ids[2]); err != nil {
		t.Fatal(err)
	}
	r = b.req(t, "GET", "/v1/admin/verify", adminKey, nil)
	wantStatus(t, r, http.StatusOK)
	ans = httpapi.VerifyAnswer{}
	r.decode(t, &ans)
	found := false
	for _, v := range ans.Violations {
		found = found || (v.Code == ledger.ViolationChargeFinish && v.ID == ids[2] && v.WorkspaceID == "v1")
	}
	if ans.OK || !found {
		t.Fatalf("verify after corrupting charge %s: %s", ids[2], r.body)
	}
}
