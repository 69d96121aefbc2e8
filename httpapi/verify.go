package httpapi

import (
	"net/http"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// VerifyAnswer is the body of GET /v1/admin/verify: what was checked, and
// every broken invariant (the first ledger.MaxReportedViolations of them).
type VerifyAnswer struct {
	OK bool `json:"ok"`
	ledger.VerifyReport
}

// verify checks every workspace's invariants (ledger.Verify) and answers
// 200 with the report, violations or not: the report is the answer.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	st, ok := s.engine.Store().(ledger.VerifyStore)
	if !ok {
		return credits.Errorf(credits.CodeInternal, "this store cannot be verified")
	}
	rep, err := ledger.Verify(r.Context(), st, nil)
	if err != nil {
		s.log.Error("verify failed", "err", err)
		return credits.Errorf(credits.CodeUnavailable, "the store could not be read to the end; nothing was verified")
	}
	if !rep.OK() {
		s.log.Warn("verify found violations", "violations", rep.ViolationCount)
	}
	writeJSON(w, http.StatusOK, VerifyAnswer{OK: rep.OK(), VerifyReport: rep})
	return nil
}
